"""The Householder-flow posterior: reflections are orthogonal involutions, the
log-density accounts for the flow (normalised; exact at its own samples), samples
have the flow's full covariance, and a VAE with it trains on Monte Carlo KL."""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pylearn_vae.models.mlp import MLP, RectifiedLinear
from pylearn_vae.models.vae import ApproximateKLWarning
from pylearn_vae.models.vae.conditional import HouseholderFlowGaussian, householder
from tests.helpers.models import binary_data, make_vae

MODE = "FAST_COMPILE"


def _posterior(num_flows=2):
    return HouseholderFlowGaussian(
        name="posterior",
        num_flows=num_flows,
        mlp=MLP(layer_name="encoder", layers=[RectifiedLinear(layer_name="h", dim=6, irange=0.3)]),
    )


@pytest.mark.compiles
def test_a_reflection_is_orthogonal_and_its_own_inverse():
    rng = np.random.default_rng(0)
    z, v = (rng.standard_normal((4, 3)).astype("float32") for _ in range(2))
    reflect = householder(pt.as_tensor(z), pt.as_tensor(v))
    twice = householder(reflect, pt.as_tensor(v))
    out, back = pytensor.function([], [reflect, twice], mode=MODE)()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.linalg.norm(z, axis=1), rtol=1e-5)
    np.testing.assert_allclose(back, z, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def flow():
    """A posterior with fixed parameters for one example, as NumPy arrays."""
    posterior = _posterior(num_flows=3)
    vae = make_vae(nvis=5, nhid=2, posterior=posterior)
    x = (np.random.default_rng(1).random((1, 5)) < 0.5).astype("float32")
    params = pytensor.function([], list(vae.encode_phi(x)), mode=MODE)()
    params[1] = params[1] + np.float32(-0.3)  # sigma < 1 so the grid covers the mass
    return posterior, [p.astype("float32") for p in params]


@pytest.mark.compiles
def test_the_log_density_integrates_to_one(flow):
    posterior, params = flow
    axis = np.linspace(-7, 7, 281)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 1, 2)
    z = pt.tensor3("z", dtype="float32")
    log_q = pytensor.function(
        [z], posterior.log_conditional(z, [pt.as_tensor(p) for p in params]), mode=MODE
    )
    total = np.exp(log_q(grid.astype("float32")).astype("float64")).sum() * (axis[1] - axis[0]) ** 2
    assert total == pytest.approx(1.0, abs=2e-3)


@pytest.mark.compiles
def test_a_sample_scores_as_its_noise_under_the_base_gaussian(flow):
    posterior, params = flow
    eps = np.random.default_rng(2).standard_normal((500, 1, 2)).astype("float32")
    tensors = [pt.as_tensor(p) for p in params]
    z = posterior.sample_from_conditional(tensors, epsilon=pt.as_tensor(eps))
    log_q = pytensor.function([], posterior.log_conditional(z, tensors), mode=MODE)()
    log_sigma = params[1][0]
    want = -0.5 * (np.log(2 * np.pi) + eps[:, 0] ** 2).sum(-1) - log_sigma.sum()
    np.testing.assert_allclose(log_q[:, 0], want, rtol=1e-5, atol=1e-4)


@pytest.mark.compiles
def test_samples_have_the_flows_full_covariance(flow):
    posterior, params = flow
    eps = np.random.default_rng(3).standard_normal((40000, 1, 2)).astype("float32")
    tensors = [pt.as_tensor(p) for p in params]
    z = pytensor.function(
        [], posterior.sample_from_conditional(tensors, epsilon=pt.as_tensor(eps)), mode=MODE
    )()[:, 0]
    mu, sigma = params[0][0].astype("float64"), np.exp(params[1][0].astype("float64"))
    h = np.eye(2)
    for v in params[2:]:
        v = v[0].astype("float64")
        h = (np.eye(2) - 2 * np.outer(v, v) / v.dot(v)) @ h
    np.testing.assert_allclose(z.mean(0), h @ mu, atol=0.03)
    np.testing.assert_allclose(np.cov(z.T), h @ np.diag(sigma**2) @ h.T, atol=0.03)
    expectation = pytensor.function([], posterior.conditional_expectation(tensors), mode=MODE)()
    np.testing.assert_allclose(expectation[0], h @ mu, rtol=1e-5, atol=1e-6)


@pytest.mark.compiles
def test_a_vae_with_the_flow_uses_monte_carlo_kl_and_trains():
    vae = make_vae(nvis=10, nhid=2, posterior=_posterior())
    assert vae.kl_integrator is None
    x = pt.matrix("x", dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ApproximateKLWarning)
        cost = -vae.log_likelihood_lower_bound(x, num_samples=1).mean()
    flows = [p for p in vae.get_params() if "flow_" in p.name]
    assert len(flows) == 4  # W and b of two flow heads
    grads = pytensor.function([x], pt.grad(cost, flows), mode=MODE)(binary_data(8, 10))
    assert all(np.isfinite(g).all() and np.abs(g).sum() > 0 for g in grads)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_a_bad_number_of_flows_is_refused(bad):
    with pytest.raises(ValueError, match="num_flows"):
        HouseholderFlowGaussian(name="posterior", num_flows=bad, mlp=MLP(layer_name="e", layers=[]))
