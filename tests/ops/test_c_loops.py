"""The C backend's vectorised loops and sums against NumPy, for every layout
PyTensor can hand them (contiguous in C or Fortran order, broadcast rows,
single values, broadcast columns, strided views, in place)."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import get_mode

from pylearn_vae.compile import resolve_mode
from pylearn_vae.speedups import c_loops, internals

# Tests of the speed machinery itself: skipped when PYLEARN_VAE_SPEEDUPS=0 turns it off.
pytestmark = pytest.mark.speedups

RNG = np.random.default_rng(0)


def _f32(*shape, order="C"):
    return np.asarray(RNG.standard_normal(shape), dtype="float32", order=order)


@pytest.fixture(scope="module")
def loops():
    """One C function whose loops take each fast path, and one plain function."""
    m = pt.matrix("m", dtype="float32")
    s = pt.matrix("s", dtype="float32")
    row = pt.vector("row", dtype="float32")
    col = pt.col("col", dtype="float32")
    scalar = pt.scalar("scalar", dtype="float32")
    outputs = [
        pt.exp(m) * s - pt.softplus(s),  # same shape: flat loop
        pt.sigmoid(m + row) * row,  # broadcast row: rows loop
        m * scalar + pt.log1p(pt.abs(s)),  # single value: flat loop
        pt.exp(m - col),  # broadcast column: PyTensor's loop
        m * m,  # an input twice
    ]
    inputs = [m, s, row, col, scalar]
    fast = pytensor.function(inputs, outputs, mode=resolve_mode("CVM"))
    return fast, inputs, outputs


def _numpy(m, s, row, col, scalar):
    m, s, row, col = (np.asarray(a, dtype="float64") for a in (m, s, row, col))
    softplus = np.logaddexp(0, s)
    return [
        np.exp(m) * s - softplus,
        row / (1 + np.exp(-(m + row))),
        m * scalar + np.log1p(np.abs(s)),
        np.exp(m - col),
        m * m,
    ]


@pytest.mark.compiles
def test_the_compiled_graph_uses_the_vectorised_loops(loops):
    fast, _, _ = loops
    ops = [type(n.op) for n in fast.maker.fgraph.apply_nodes]
    assert c_loops.VectorisedElemwise in ops
    assert pt.elemwise.Elemwise not in ops


@pytest.mark.parametrize(
    "layout", ["C order", "Fortran order", "strided views", "odd sizes", "one row"]
)
@pytest.mark.compiles
def test_loops_match_numpy_for_every_layout(loops, layout):
    fast, _, _ = loops
    shape = {"odd sizes": (7, 13), "one row": (1, 37)}.get(layout, (40, 64))
    order = "F" if layout == "Fortran order" else "C"
    m, s = _f32(*shape, order=order), _f32(*shape, order=order)
    if layout == "strided views":
        m, s = _f32(shape[0], 2 * shape[1])[:, ::2], _f32(2 * shape[0], shape[1])[::2]
    row, col, scalar = _f32(shape[1]), _f32(shape[0], 1), np.float32(0.75)
    got = fast(m, s, row, col, scalar)
    for i, (g, want) in enumerate(zip(got, _numpy(m, s, row, col, scalar), strict=True)):
        np.testing.assert_allclose(g, want, rtol=2e-6, atol=2e-6, err_msg=f"output {i}")


@pytest.mark.compiles
def test_a_strided_row_is_read_with_its_strides():
    """A broadcast row can be a strided view (every other element of a vector)."""
    m = pt.matrix("m", dtype="float32")
    v = pt.vector("v", dtype="float32")
    f = pytensor.function([m, v], pt.exp(m) * v[::2], mode=resolve_mode("CVM"))
    assert any(isinstance(n.op, c_loops.VectorisedElemwise) for n in f.maker.fgraph.apply_nodes)
    mv, vv = _f32(6, 9), _f32(18)
    np.testing.assert_allclose(f(mv, vv), np.exp(mv) * vv[::2], rtol=2e-6, atol=1e-6)


@pytest.mark.compiles
def test_in_place_loops_give_the_same_values_as_plain_pytensor():
    x = pt.matrix("x", dtype="float32")
    w = pt.matrix("w", dtype="float32")
    b = pt.vector("b", dtype="float32")
    # The product is used once, so the loop overwrites it with its result.
    y = pt.exp(pt.dot(x, w) * 0.25 + b) * 0.5 + b
    fast = pytensor.function([x, w, b], y, mode=resolve_mode("CVM"))
    plain = pytensor.function([x, w, b], y, mode=get_mode("CVM"))
    assert any(
        isinstance(n.op, c_loops.VectorisedElemwise) and n.op.destroy_map
        for n in fast.maker.fgraph.apply_nodes
    )
    xv, wv, bv = _f32(50, 30), _f32(30, 20), _f32(20)
    np.testing.assert_allclose(fast(xv, wv, bv), plain(xv, wv, bv), rtol=1e-6, atol=1e-6)


def test_the_generated_code_calls_the_vectorised_loop():
    """PyTensor builds an elementwise loop's C code through ``Elemwise._c_all``
    (named in pylearn_vae.speedups.internals); if it stops, this fails loudly."""
    assert internals.elemwise_c_parts_available()
    x = pt.matrix("x", dtype="float32")
    node = c_loops.VectorisedElemwise(pt.exp(x).owner.op.scalar_op).make_node(x)
    sub = {"fail": "goto fail;", "id": 1}
    code = node.op.c_code(node, "node7", ["V1"], ["V3"], sub)
    support = node.op.c_support_code_apply(node, "node7")
    assert "pylearn_vae_loop_node7(" in code
    assert c_loops.MARKER in support and "pylearn_vae_loop_node7(" in support


@pytest.fixture(scope="module")
def sums():
    x = pt.tensor3("x", dtype="float32")
    axes = [(2,), (1,), (0,), (0, 1), (1, 2), None]
    outputs = [x.sum(axis=a) for a in axes]
    return pytensor.function([x], outputs, mode=resolve_mode("CVM")), axes


@pytest.mark.compiles
def test_sums_use_the_contiguous_reduction(sums):
    fast, axes = sums
    found = [n.op for n in fast.maker.fgraph.apply_nodes if isinstance(n.op, c_loops.ContiguousSum)]
    assert len(found) == len(axes)


@pytest.mark.parametrize("layout", ["C order", "Fortran order", "strided", "empty", "ragged"])
@pytest.mark.compiles
def test_sums_match_a_float64_sum(sums, layout):
    fast, axes = sums
    x = {
        "C order": lambda: _f32(3, 50, 203),
        "Fortran order": lambda: _f32(3, 50, 203, order="F"),
        "strided": lambda: _f32(6, 50, 203)[::2, :, ::3],
        "empty": lambda: _f32(3, 0, 5),
        "ragged": lambda: _f32(1, 1, 7),
    }[layout]()
    for axis, got in zip(axes, fast(x), strict=True):
        want = np.sum(x, axis=axis, dtype="float64").astype("float32")
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=f"axis {axis}")


@pytest.mark.compiles
def test_a_non_consecutive_or_integer_sum_is_left_to_pytensor():
    x = pt.tensor3("x", dtype="float32")
    i = pt.matrix("i", dtype="int32")
    f = pytensor.function([x, i], [x.sum(axis=(0, 2)), i.sum()], mode=resolve_mode("CVM"))
    assert not any(isinstance(n.op, c_loops.ContiguousSum) for n in f.maker.fgraph.apply_nodes)
    xv = _f32(3, 4, 5)
    iv = np.arange(12, dtype="int32").reshape(3, 4)
    got = f(xv, iv)
    np.testing.assert_allclose(got[0], xv.sum(axis=(0, 2)), rtol=1e-6)
    assert got[1] == 66
