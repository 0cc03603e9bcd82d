"""The pairwise Gaussian log-density (every sample under every component, by
matrix products) against the broadcast formula it replaces: values, gradients,
a leading samples axis, and precision where sigma is small (the sums cancel)."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pylearn_vae.expr.probability import log_diag_gaussian, pairwise_log_diag_gaussian
from pylearn_vae.models.mlp import MLP, RectifiedLinear
from pylearn_vae.models.vae.conditional import (
    Conditional,
    DiagonalGaussian,
    HouseholderFlowGaussian,
    householder,
)

# The pairwise Gaussian log-density runs in float64 on purpose.
pytestmark = pytest.mark.usefixtures("deliberate_float64")

MODE = "FAST_COMPILE"


def _direct64(x, mu, log_sigma, v=None):
    """The broadcast formula in float64 NumPy: the reference."""
    x, mu, log_sigma = (np.asarray(a, "float64") for a in (x, mu, log_sigma))
    x = x[..., None, :]
    if v is not None:
        v = np.asarray(v, "float64")
        x = x - 2.0 * v * (x * v).sum(-1, keepdims=True) / (v * v).sum(-1, keepdims=True)
    return -0.5 * (np.log(2 * np.pi) + 2 * log_sigma + ((x - mu) / np.exp(log_sigma)) ** 2).sum(-1)


def _inputs(seed, shape=(3, 6, 5), k=4, log_sigma_shift=-1.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype("float32")
    mu, v = (rng.standard_normal((k, shape[-1])).astype("float32") for _ in range(2))
    log_sigma = (rng.standard_normal((k, shape[-1])) + log_sigma_shift).astype("float32")
    return x, mu, log_sigma, v


@pytest.mark.parametrize("reflect", [False, True])
@pytest.mark.compiles
def test_it_equals_the_broadcast_formula_with_a_samples_axis(reflect):
    x, mu, log_sigma, v = _inputs(0)
    out = pairwise_log_diag_gaussian(x, mu, log_sigma, reflect_along=v if reflect else None)
    got = out.eval()
    assert got.shape == (3, 6, 4) and got.dtype == np.float32
    want = _direct64(x, mu, log_sigma, v if reflect else None)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-4)


@pytest.mark.parametrize("reflect", [False, True])
@pytest.mark.compiles
def test_small_sigmas_keep_float32_accuracy(reflect):
    # sigma down to about 1e-3: the expanded squares reach 1e6 or more and
    # cancel to O(1) at a sample near its component's mean, where a float32
    # expansion is off by whole nats.
    x, mu, log_sigma, v = _inputs(1, shape=(400, 40), k=300, log_sigma_shift=-5.0)
    if not reflect:
        v = None
    noise = np.random.default_rng(5).standard_normal(mu.shape).astype("float32")
    x[:300] = mu + np.exp(log_sigma) * noise  # draws from each component
    if reflect:  # ... pushed through its reflection (the flow's sample)
        x[:300] -= 2 * v * (x[:300] * v).sum(1, keepdims=True) / (v * v).sum(1, keepdims=True)
    got = pairwise_log_diag_gaussian(x, mu, log_sigma, reflect_along=v).eval()
    want = _direct64(x, mu, log_sigma, v)
    own = np.arange(300)
    assert np.abs(want[own, own]).max() < 1e3  # the near pairs are O(100), not huge
    np.testing.assert_allclose(got[own, own], want[own, own], rtol=0, atol=2e-4)
    np.testing.assert_allclose(got, want, rtol=2e-7)


@pytest.mark.parametrize("reflect", [False, True])
@pytest.mark.compiles
def test_its_gradient_matches_the_broadcast_formulas(reflect):
    x, mu, log_sigma, v = (pt.as_tensor(a.astype("float64")) for a in _inputs(2, shape=(7, 5)))
    if reflect:
        pairwise = pairwise_log_diag_gaussian(x, mu, log_sigma, reflect_along=v)
        direct = log_diag_gaussian(householder(x[:, None, :], v), mu, log_sigma)
    else:
        pairwise = pairwise_log_diag_gaussian(x, mu, log_sigma)
        direct = log_diag_gaussian(x[:, None, :], mu, log_sigma)
    # weight the pairs unevenly so every entry's gradient counts
    weights = pt.as_tensor(np.random.default_rng(3).standard_normal((7, 4)))
    wrt = [x, mu, log_sigma] + ([v] if reflect else [])
    grads = pytensor.function(
        [],
        pt.grad((pairwise * weights).sum(), wrt) + pt.grad((direct * weights).sum(), wrt),
        mode=MODE,
    )()
    half = len(wrt)
    for mine, theirs in zip(grads[:half], grads[half:]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-9)


def _posterior(cls, **kwargs):
    mlp = MLP(layer_name="encoder", layers=[RectifiedLinear(layer_name="h", dim=4, irange=0.3)])
    return cls(name="posterior", mlp=mlp, **kwargs)


@pytest.mark.parametrize(
    "posterior",
    [
        _posterior(DiagonalGaussian),
        _posterior(HouseholderFlowGaussian, num_flows=1),
        _posterior(HouseholderFlowGaussian, num_flows=2),
    ],
    ids=["diagonal", "one reflection", "two reflections (broadcast default)"],
)
@pytest.mark.compiles
def test_each_posterior_scores_pairs_as_its_own_log_density(posterior):
    rng = np.random.default_rng(4)
    k, d = 5, 3
    params = [
        rng.standard_normal((k, d)).astype("float32")
        for _ in range(2 + getattr(posterior, "num_flows", 0))
    ]
    z = rng.standard_normal((2, 6, d)).astype("float32")
    pairwise = posterior.log_conditional_pairwise(
        pt.as_tensor(z), [pt.as_tensor(p) for p in params]
    )
    broadcast = Conditional.log_conditional_pairwise(
        posterior, pt.as_tensor(z), [pt.as_tensor(p) for p in params]
    )
    got, want = pytensor.function([], [pairwise, broadcast], mode=MODE)()
    assert got.shape == (2, 6, k)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
