"""The vectorisable float32 kernels against float64 references, and their use in graphs."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from numba import njit
from pytensor.scalar import basic as ps
from pytensor.tensor.elemwise import DimShuffle

from pylearn_vae.compile import function
from pylearn_vae.speedups import numba_math, vecmath
from pylearn_vae.speedups.numba_math import ContiguousDimShuffle, InlinedComposite, VecExp
from tests.helpers.markers import numba_only
from tests.helpers.references import float32_inputs, sigmoid64, softplus64

# Accuracy is checked down to subnormal results, as IEEE arithmetic gives them.
# Tests of the speed machinery itself: skipped when PYLEARN_VAE_SPEEDUPS=0 turns it off.
pytestmark = [pytest.mark.usefixtures("gradual_underflow"), pytest.mark.speedups]


def _loop(kernel):
    @njit
    def apply(values, out):
        for i in range(values.size):
            out[i] = kernel(values[i])

    return apply


@pytest.mark.parametrize(
    "kernel, reference, domain",
    [
        (vecmath.exp32, np.exp, "any"),
        (vecmath.log32, np.log, "positive"),
        (vecmath.log1p32, np.log1p, "above_minus_one"),
        (vecmath.softplus32, softplus64, "any"),
        (vecmath.sigmoid32, sigmoid64, "any"),
        (vecmath.sqrt32, np.sqrt, "positive"),
    ],
)
def test_kernel_is_within_a_few_ulp_of_float64(kernel, reference, domain):
    x = float32_inputs(domain)
    out = np.empty_like(x)
    _loop(kernel)(x, out)
    with np.errstate(all="ignore"):
        want = reference(x.astype(np.float64)).astype(np.float32)
    same_nan = np.isnan(out) == np.isnan(want)
    assert same_nan.all(), x[~same_nan]
    finite = np.isfinite(want)
    assert (out[~finite & ~np.isnan(want)] == want[~finite & ~np.isnan(want)]).all()
    ulp = np.spacing(np.abs(want[finite]))
    err = np.abs(out[finite].astype(np.float64) - want[finite]) / ulp
    assert err.max() <= 4, (
        x[finite][err.argmax()],
        out[finite][err.argmax()],
        want[finite][err.argmax()],
    )


def test_out_of_domain_values_follow_libm():
    out = np.empty(3, np.float32)
    _loop(vecmath.log32)(np.array([-1.0, 0.0, np.inf], np.float32), out)
    assert np.isnan(out[0]) and out[1] == -np.inf and out[2] == np.inf
    _loop(vecmath.log1p32)(np.array([-2.0, -1.0, np.inf], np.float32), out)
    assert np.isnan(out[0]) and out[1] == -np.inf and out[2] == np.inf


@pytest.fixture(scope="module")
def bernoulli_graph():
    x = pt.matrix("x", dtype="float32")
    s = pt.tensor3("s", dtype="float32")
    xs = pt.shape_padleft(x)  # a samples axis, as the criterion makes
    ll = (xs * s - pt.softplus(s)).sum(axis=-1)
    return [x, s], [ll.sum(), pytensor.grad(ll.sum(), s), pt.exp(s).mean()]


def _all_nodes(fgraph):
    """The apply nodes of ``fgraph`` and of the graphs inside its ops (newer
    PyTensors wrap fused loops and reductions in ops with inner graphs)."""
    for node in fgraph.apply_nodes:
        yield node
        inner = getattr(node.op, "fgraph", None)
        if inner is not None and not isinstance(node.op, ps.ScalarOp):
            yield from _all_nodes(inner)


@numba_only
@pytest.mark.compiles
def test_numba_mode_uses_the_vectorised_graph_and_agrees_with_pytensor(bernoulli_graph):
    inputs, outputs = bernoulli_graph
    ours = function(inputs, outputs)
    plain = pytensor.function(inputs, outputs, mode=pytensor.compile.mode.get_mode("NUMBA"))
    nodes = list(_all_nodes(ours.maker.fgraph))
    kinds = {type(n.op).__name__ for n in nodes}
    scalar = [getattr(n.op, "scalar_op", None) for n in nodes]
    composites = [op for op in scalar if isinstance(op, InlinedComposite)]
    assert composites and "ContiguousDimShuffle" in kinds
    assert any(isinstance(n.op, VecExp) for c in composites for n in c.fgraph.apply_nodes)
    assert not any(type(n.op) is ContiguousDimShuffle for n in plain.maker.fgraph.apply_nodes)
    rng = np.random.default_rng(3)
    x = (rng.random((20, 30)) < 0.3).astype(np.float32)
    s = (rng.standard_normal((2, 20, 30)) * 6).astype(np.float32)
    for got, want in zip(ours(x, s), plain(x, s), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


@numba_only
@pytest.mark.compiles
def test_contiguous_dimshuffle_copies_a_transposed_input_correctly():
    a = pt.matrix("a", dtype="float32")
    out = pt.exp(pt.shape_padleft(a.T)) + 1
    f = function([a], out)
    value = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
    np.testing.assert_allclose(f(value), np.exp(value.T)[None] + 1, rtol=1e-6)


@numba_only
@pytest.mark.compiles
def test_fused_loop_with_several_outputs_and_functions_agrees_with_pytensor():
    # One fused loop with two results and both exp and log1p in it: the loop
    # body is our force-inlined storing function (handles_out), including the
    # in-place case where a result overwrites an input buffer.
    a = pt.matrix("a", dtype="float32")
    b = pt.matrix("b", dtype="float32")
    row = pt.matrix("row", dtype="float32", shape=(1, None))
    t = a + row
    outputs = [pt.exp(t) * b + pt.log1p(b), t * pt.log1p(b), pt.sqrt(pt.exp(-t))]
    ours = function([a, b, row], outputs)
    plain = pytensor.function([a, b, row], outputs, mode=pytensor.compile.mode.get_mode("NUMBA"))
    fused = [
        n.op.scalar_op
        for n in ours.maker.fgraph.apply_nodes
        if isinstance(getattr(n.op, "scalar_op", None), InlinedComposite)
    ]
    assert any(len(op.outputs) > 1 for op in fused)
    rng = np.random.default_rng(4)
    args = [
        rng.standard_normal((37, 13)).astype(np.float32),
        rng.random((37, 13)).astype(np.float32),
        rng.standard_normal((1, 13)).astype(np.float32),
    ]
    for got, want in zip(ours(*args), plain(*args), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


@numba_only
@pytest.mark.compiles
def test_matrix_transposes_feed_products_with_a_known_layout():
    a = pt.matrix("a", dtype="float32")
    b = pt.matrix("b", dtype="float32")
    c = pt.matrix("c", dtype="float32")
    f = function([a, b, c], [a.T @ b, c @ a.T, pt.exp(a.T) * 2])
    shuffles = [n.op for n in f.maker.fgraph.apply_nodes if isinstance(n.op, DimShuffle)]
    assert shuffles and all(type(op) is ContiguousDimShuffle for op in shuffles)
    rng = np.random.default_rng(5)
    base = rng.standard_normal((6, 10)).astype(np.float32)
    y = rng.standard_normal((6, 4)).astype(np.float32)
    z = rng.standard_normal((3, 5)).astype(np.float32)
    for x in (np.ascontiguousarray(base[:, :5]), base[:, ::2]):  # contiguous / strided
        first, second, third = f(x, y, z)
        np.testing.assert_allclose(first, x.T @ y, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(second, z @ x.T, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(third, np.exp(x.T) * 2, rtol=1e-6)


def _fused(f):
    return [
        n.op.scalar_op
        for n in f.maker.fgraph.apply_nodes
        if isinstance(getattr(n.op, "scalar_op", None), InlinedComposite)
    ]


@numba_only
@pytest.mark.compiles
def test_fused_expressions_divide_as_numpy_and_use_the_kernels():
    # The Bernoulli gradient's shape: PyTensor fuses it before the
    # vectorising rewrite runs, so its sigmoid arrives as PyTensor's op; the
    # generated expression still evaluates it with vecmath's kernel. Division
    # by zero gives inf/nan as in NumPy (no ZeroDivisionError check, which
    # would also stop vectorisation).
    x = pt.matrix("x", dtype="float32")
    s = pt.matrix("s", dtype="float32")
    n = pt.scalar("n", dtype="float32")
    out = (-x) / n + pt.sigmoid(s) / n
    f = function([x, s, n], out)
    (fused,) = _fused(f)
    src, env = numba_math._composite_source(fused.fgraph)
    assert vecmath.sigmoid32 in env.values() and " / " in src
    rng = np.random.default_rng(6)
    xv = (rng.random((9, 7)) < 0.5).astype(np.float32)
    sv = (rng.standard_normal((9, 7)) * 5).astype(np.float32)
    want = (-xv.astype(np.float64) + 1 / (1 + np.exp(-sv.astype(np.float64)))) / 4
    np.testing.assert_allclose(f(xv, sv, np.float32(4)), want, rtol=2e-6, atol=1e-7)
    with np.errstate(divide="ignore", invalid="ignore"):
        zero = np.float32(0)
        want = (-xv) / zero + (1 / (1 + np.exp(-sv))) / zero
        np.testing.assert_array_equal(f(xv, sv, zero), want)


@numba_only
@pytest.mark.compiles
def test_fused_expressions_keep_pytensor_types_with_mixed_dtypes(float64_graphs):
    # Operators are written out only between values of one float type; an
    # int or float64 operand goes through PyTensor's own function, so the
    # result types and values match PyTensor's.
    a = pt.vector("a", dtype="float32")
    k = pt.vector("k", dtype="int32")
    d = pt.vector("d", dtype="float64")
    outputs = [pt.exp(a) * k + a, (a * 3 + k) / 2, pt.exp(a) * d - a]
    ours = function([a, k, d], outputs)
    plain = pytensor.function([a, k, d], outputs, mode=pytensor.compile.mode.get_mode("NUMBA"))
    args = [
        np.linspace(-2, 2, 11, dtype=np.float32),
        np.arange(-5, 6, dtype=np.int32),
        np.linspace(0, 1, 11),
    ]
    for got, want in zip(ours(*args), plain(*args), strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=2e-6)
