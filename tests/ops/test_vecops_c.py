"""The C backend's branch-free float32 math against float64 references (the same
inputs and bound as the Numba kernels in test_vecmath.py)."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest

from pylearn_vae.compile import function
from pylearn_vae.speedups import vecops
from tests.helpers.references import float32_inputs, sigmoid64, softplus64

# Accuracy is checked down to subnormal results, as IEEE arithmetic gives them.
# Tests of the speed machinery itself: skipped when PYLEARN_VAE_SPEEDUPS=0 turns it off.
pytestmark = [pytest.mark.usefixtures("gradual_underflow"), pytest.mark.speedups]

CASES = {
    "exp": (pt.exp, np.exp, "any", vecops.VecExp),
    "log": (pt.log, np.log, "positive", vecops.VecLog),
    "log1p": (pt.log1p, np.log1p, "above_minus_one", vecops.VecLog1p),
    "softplus": (pt.softplus, softplus64, "any", vecops.VecSoftplus),
    "sigmoid": (pt.sigmoid, sigmoid64, "any", vecops.VecSigmoid),
    "sqrt": (pt.sqrt, np.sqrt, "positive", vecops.VecSqrt),
}


@pytest.fixture(scope="module")
def compiled():
    """One C function computing all six operations on six inputs."""
    inputs = [pt.vector(name, dtype="float32") for name in CASES]
    outputs = [case[0](x) for case, x in zip(CASES.values(), inputs)]
    return function(inputs, outputs, mode="CVM")


@pytest.mark.compiles
def test_the_c_graph_uses_the_branch_free_operations(compiled):
    scalar_ops = {type(n.op.scalar_op) for n in compiled.maker.fgraph.apply_nodes}
    assert {case[3] for case in CASES.values()} <= scalar_ops


@pytest.mark.compiles
def test_each_operation_is_within_a_few_ulp_of_float64(compiled):
    xs = [float32_inputs(case[2]) for case in CASES.values()]
    outs = compiled(*xs)
    for name, x, out in zip(CASES, xs, outs, strict=True):
        with np.errstate(all="ignore"):
            want = CASES[name][1](x.astype(np.float64)).astype(np.float32)
        assert out.dtype == np.float32
        assert (np.isnan(out) == np.isnan(want)).all(), name
        infinite = ~np.isfinite(want) & ~np.isnan(want)
        assert (out[infinite] == want[infinite]).all(), name
        finite = np.isfinite(want)
        err = np.abs(out[finite].astype(np.float64) - want[finite]) / np.spacing(
            np.abs(want[finite])
        )
        assert err.max() <= 4, (name, x[finite][err.argmax()], out[finite][err.argmax()])


@pytest.mark.compiles
def test_float64_graphs_keep_pytensors_code(float64_graphs):
    x = pt.vector("x", dtype="float64")
    f = function([x], pt.softplus(x), mode="CVM")
    assert not any(
        isinstance(getattr(n.op, "scalar_op", None), vecops.VecSoftplus)
        for n in f.maker.fgraph.apply_nodes
    )
    np.testing.assert_allclose(f(np.array([-50.0, 0.0, 50.0])), np.logaddexp(0, [-50, 0, 50]))


@pytest.mark.compiles
def test_loops_fused_before_the_rewrite_get_the_branch_free_operations():
    """PyTensor fuses some expressions before the vectorising rewrite runs (the
    Bernoulli gradient's sigmoid); the C graph's fused loops are rebuilt."""
    x = pt.matrix("x", dtype="float32")
    s = pt.matrix("s", dtype="float32")
    ll = (x * s - pt.softplus(s)).sum()
    grad = pt.grad(ll, s)
    f = function([x, s], [ll, grad], mode="CVM")
    inner = set()
    for node in f.maker.fgraph.apply_nodes:
        composite = getattr(node.op, "scalar_op", None)
        if hasattr(composite, "fgraph"):
            inner |= {type(n.op) for n in composite.fgraph.apply_nodes}
    assert vecops.VecSigmoid in inner or vecops.VecSoftplus in inner
    assert not set(vecops.VECTORISED) & inner  # no libm sigmoid/softplus/exp left
    rng = np.random.default_rng(0)
    xv = (rng.random((20, 30)) < 0.3).astype("float32")
    sv = (rng.standard_normal((20, 30)) * 5).astype("float32")
    value, gradient = f(xv, sv)
    np.testing.assert_allclose(value, (xv * sv - np.logaddexp(0, sv)).sum(), rtol=1e-5)
    np.testing.assert_allclose(gradient, xv - 1 / (1 + np.exp(-sv)), rtol=1e-5, atol=1e-6)
