"""The mixture priors: normalised densities, log-densities against direct NumPy
formulas, sampling frequencies, gradients by finite differences, and the Monte
Carlo KL path they use against a closed form."""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pylearn_vae.expr.probability import (
    kl_diag_gaussians,
    log_mixture_of_diag_gaussians,
    log_softmax,
)
from pylearn_vae.models.vae import ApproximateKLWarning
from pylearn_vae.models.vae.prior import MixtureOfGaussiansPrior, VampPrior
from tests.helpers.models import make_vae

# The pairwise Gaussian log-density runs in float64 on purpose.
pytestmark = pytest.mark.usefixtures("deliberate_float64")

#: These are tests of the maths: compile quickly (the backends are tested elsewhere).
MODE = "FAST_COMPILE"


def _log_gauss(z, mu, log_sigma):
    return -0.5 * np.sum(
        np.log(2 * np.pi) + 2 * log_sigma + ((z - mu) / np.exp(log_sigma)) ** 2, axis=-1
    )


def _log_mixture(z, means, log_sigmas, log_weights):
    per = np.stack([_log_gauss(z, m, s) for m, s in zip(means, log_sigmas)], axis=-1)
    top = per.max(axis=-1, keepdims=True)
    return (top + np.log(np.exp(per + log_weights - top).sum(-1, keepdims=True)))[..., 0]


def _randomise(prior, seed=0):
    rng = np.random.default_rng(seed)
    for p in prior.get_params():
        value = p.get_value()
        p.set_value((value + 0.5 * rng.standard_normal(value.shape)).astype(value.dtype))


def _grid(nhid, lo=-9.0, hi=9.0, n=601):
    axes = [np.linspace(lo, hi, n if nhid == 1 else 181)] * nhid
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, nhid)
    cell = np.prod([a[1] - a[0] for a in axes])
    return mesh.astype("float32"), cell


@pytest.fixture(scope="module", params=["mixture", "vamp"])
def vae(request):
    prior = (
        MixtureOfGaussiansPrior(num_components=3)
        if request.param == "mixture"
        else VampPrior(num_pseudo_inputs=4, init_mean=0.5, init_std=0.3)
    )
    model = make_vae(nvis=6, nhid=2, hidden=5, prior=prior, irange=0.5)
    _randomise(model.prior)
    z = pt.matrix("z", dtype="float32")
    log_p = pytensor.function([z], model.log_p_z(z), mode=MODE)
    return model, log_p


def _mixture_parameters(vae):
    prior = vae.prior
    if isinstance(prior, MixtureOfGaussiansPrior):
        logits = prior.prior_logits.get_value()
        log_w = logits - np.log(np.exp(logits).sum())
        return prior.prior_means.get_value(), prior.prior_log_sigmas.get_value(), log_w
    mu, log_sigma = pytensor.function([], list(prior.components()), mode=MODE)()
    return mu, log_sigma, np.full(len(mu), -np.log(len(mu)))


@pytest.mark.compiles
def test_the_density_integrates_to_one(vae):
    model, log_p = vae
    grid, cell = _grid(model.nhid)
    total = np.exp(log_p(grid).astype("float64")).sum() * cell
    assert total == pytest.approx(1.0, abs=2e-3)


@pytest.mark.compiles
def test_the_log_density_matches_a_direct_formula(vae):
    model, log_p = vae
    z = np.random.default_rng(1).standard_normal((50, model.nhid)).astype("float32") * 2
    want = _log_mixture(z.astype("float64"), *_mixture_parameters(model))
    np.testing.assert_allclose(log_p(z), want, rtol=1e-5, atol=1e-5)


@pytest.mark.compiles
def test_samples_follow_the_mixture(vae):
    model, _ = vae
    means, log_sigmas, log_w = _mixture_parameters(model)
    draws = pytensor.function([], model.sample_from_p_z(40000), mode=MODE)()
    assert draws.shape == (40000, model.nhid)
    # Mean and second moment of a mixture: weighted by the component weights.
    w = np.exp(log_w)[:, None]
    mean = (w * means).sum(0)
    second = (w * (np.exp(2 * log_sigmas) + means**2)).sum(0)
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.05)
    np.testing.assert_allclose((draws**2).mean(0), second, rtol=0.05, atol=0.05)


@pytest.mark.compiles
def test_the_kl_term_is_monte_carlo_without_a_warning(vae):
    model, _ = vae
    x = pt.matrix("x", dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ApproximateKLWarning)
        cost = model.log_likelihood_lower_bound(x, num_samples=2)
    assert model.kl_integrator is None
    grads = pt.grad(cost.mean(), model.prior.get_params())
    values = pytensor.function([x], grads, mode=MODE)(np.ones((3, model.nvis), "float32"))
    assert all(np.isfinite(g).all() and np.abs(g).sum() > 0 for g in values)


@pytest.mark.compiles
def test_a_one_component_mixture_gives_the_closed_form_kl_by_monte_carlo():
    model = make_vae(nvis=6, nhid=3, prior=MixtureOfGaussiansPrior(num_components=1))
    _randomise(model.prior, seed=3)
    x = pt.matrix("x", dtype="float32")
    phi = model.encode_phi(x)
    eps = model.sample_from_epsilon((20000, x.shape[0], model.nhid))
    mc = model.kl_divergence_term(phi, model.get_prior_theta(), epsilon=eps)
    exact = kl_diag_gaussians(*phi, model.prior.prior_means[0], model.prior.prior_log_sigmas[0])
    data = (np.random.default_rng(0).random((4, 6)) < 0.5).astype("float32")
    got, want = pytensor.function([x], [mc, exact], mode=MODE)(data)
    np.testing.assert_allclose(got, want, rtol=0.05, atol=0.03)


@pytest.mark.compiles
def test_the_mixture_log_density_has_the_right_gradient(float64_graphs):
    rng = np.random.default_rng(2)
    z = rng.standard_normal((5, 3))
    means, log_sigmas = rng.standard_normal((4, 3)), 0.3 * rng.standard_normal((4, 3))
    logits = rng.standard_normal(4)

    def f(z, means, log_sigmas, logits):
        return log_mixture_of_diag_gaussians(z, means, log_sigmas, log_softmax(logits)).sum()

    pytensor.gradient.verify_grad(f, [z, means, log_sigmas, logits], rng=rng, eps=1e-6, mode=MODE)


@pytest.mark.parametrize(
    "make",
    [
        lambda: MixtureOfGaussiansPrior(num_components=0),
        lambda: MixtureOfGaussiansPrior(num_components=2.5),
        lambda: MixtureOfGaussiansPrior(init_spread=float("nan")),
        lambda: VampPrior(num_pseudo_inputs=-1),
        lambda: VampPrior(init_std=-1.0),
    ],
)
def test_bad_settings_are_refused_with_their_name(make):
    with pytest.raises(ValueError, match="num_components|init_spread|num_pseudo_inputs|init_std"):
        make()


def test_a_vamp_prior_outside_a_vae_says_what_it_needs():
    class StandIn:
        rng = np.random.RandomState(0)
        batch_size = 10

    prior = VampPrior(num_pseudo_inputs=3)
    prior.set_vae(StandIn())
    with pytest.raises(RuntimeError, match="VampPrior needs the VAE"):
        prior.initialize_parameters(2)
