"""The two-layer VAE against the mathematics.

A tiny model (3 binary units, one-dimensional z1 and z2) is small enough to
integrate by brute force: Gauss-Hermite quadrature under the posteriors
gives its exact ELBO and exact log p(x) for all 8 binary vectors, built
from its networks' outputs alone (not from the model's own composition of
them). The model's estimates must agree within their Monte Carlo error, its
samples must follow p(x), its gradients must match finite differences, and
the KL registry must pick the analytic term where one exists.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pylearn_vae.compile import function
from pylearn_vae.costs.vae import ImportanceSamplingCriterion, VAECriterion
from pylearn_vae.models.mlp import MLP, Tanh
from pylearn_vae.models.vae.conditional import HouseholderFlowGaussian
from pylearn_vae.models.vae.hierarchical import LatentConditionalGaussianKL
from pylearn_vae.models.vae.kl import DiagonalGaussianPriorPosteriorKL
from pylearn_vae.models.vae.prior import VampPrior
from pylearn_vae.utils import using_floatX
from pylearn_vae.utils.rng import reseed, rng_updates
from tests.helpers.models import binary_data, make_hvae
from tests.helpers.references import check_gradients_by_finite_differences

#: Every binary vector of the tiny model.
PATTERNS = np.array(list(itertools.product([0, 1], repeat=3)), dtype="float32")

#: Gauss-Hermite nodes per latent axis.
NODES = 48


@pytest.fixture(scope="module")
def tiny():
    model = make_hvae(nvis=3, nhid=1, bottom_nhid=1, hidden=6, irange=0.9, seed=4, layer=Tanh)
    model.prior.prior_mu.set_value(np.array([0.3], dtype="float32"))
    model.prior.log_prior_sigma.set_value(np.array([-0.2], dtype="float32"))
    return model


def _network_function(network, width):
    inputs = pt.matrix("inputs", shape=(None, width), dtype="float32")
    return function([inputs], list(network.encode_conditional_params(inputs)))


def _log_normal(z, mu, log_sigma):
    return -0.5 * np.log(2 * np.pi) - log_sigma - 0.5 * ((z - mu) / np.exp(log_sigma)) ** 2


@pytest.fixture(scope="module")
def brute_force(tiny):
    """Exact ELBO and log p(x) of each pattern, by quadrature (float64)."""
    posterior = _network_function(tiny.posterior, 3)
    bottom_posterior = _network_function(tiny.bottom_posterior, 4)
    bottom_prior = _network_function(tiny.bottom_prior, 1)
    decoder = _network_function(tiny.conditional, 2)
    t, w = np.polynomial.hermite.hermgauss(NODES)
    w = w / np.sqrt(np.pi)
    prior_mu = float(tiny.prior.prior_mu.get_value()[0])
    prior_ls = float(tiny.prior.log_prior_sigma.get_value()[0])
    elbos, log_px = [], []
    for x in PATTERNS:
        mu2, ls2 = (float(v[0, 0]) for v in posterior(x[None]))
        z2 = mu2 + np.sqrt(2) * np.exp(ls2) * t  # (N,)
        inputs = np.column_stack([np.repeat(x[None], NODES, 0), z2]).astype("float32")
        mu1, ls1 = (v[:, 0].astype(np.float64) for v in bottom_posterior(inputs))
        pm1, pls1 = (
            v[:, 0].astype(np.float64) for v in bottom_prior(z2[:, None].astype("float32"))
        )
        z1 = mu1[:, None] + np.sqrt(2) * np.exp(ls1)[:, None] * t[None, :]  # (N z2, N z1)
        pairs = np.column_stack([z1.ravel(), np.repeat(z2, NODES)]).astype("float32")
        (logits,) = decoder(pairs)
        logits = logits.astype(np.float64).reshape(NODES, NODES, 3)
        log_px_z = np.sum(x * logits - np.logaddexp(0, logits), axis=-1)
        log_joint = (
            log_px_z
            + _log_normal(z1, pm1[:, None], pls1[:, None])
            + _log_normal(z2, prior_mu, prior_ls)[:, None]
        )
        log_q = _log_normal(z1, mu1[:, None], ls1[:, None]) + _log_normal(z2, mu2, ls2)[:, None]
        weights = w[:, None] * w[None, :]
        elbos.append(np.sum(weights * (log_joint - log_q)))
        log_px.append(np.log(np.sum(weights * np.exp(log_joint - log_q))))
    return np.array(elbos), np.array(log_px)


@pytest.mark.compiles
def test_the_quadrature_is_a_distribution_over_the_8_patterns(brute_force):
    _, log_px = brute_force
    assert np.exp(log_px).sum() == pytest.approx(1.0, abs=1e-6)


@pytest.fixture(scope="module")
def estimates(tiny):
    """The model's ELBO (analytic KL terms), the same with Monte Carlo KL terms,
    its log importance weights and its IS estimate, for S samples per pattern."""
    X = tiny.get_input_space().make_theano_batch()
    S = pt.iscalar("S")
    f = function(
        [X, S],
        [
            tiny.log_likelihood_lower_bound(X, S),
            tiny.log_likelihood_lower_bound(X, S, approximate_kl=True),
            tiny.log_importance_weights(X, S),
            tiny.log_likelihood_approximation(X, S),
        ],
    )
    reseed(rng_updates(tiny.log_importance_weights(X, 1)), 11)
    return f


@pytest.mark.compiles
def test_the_elbo_equals_the_brute_force_one_within_its_monte_carlo_error(brute_force, estimates):
    exact, _ = brute_force
    analytic, monte_carlo, log_w, _ = estimates(PATTERNS, 40_000)
    error = log_w.std(axis=0) / np.sqrt(log_w.shape[0])
    assert np.all(np.abs(log_w.mean(axis=0) - exact) < 5 * error), (log_w.mean(axis=0), exact)
    assert np.all(np.abs(monte_carlo - exact) < 5 * error), (monte_carlo, exact)
    # the analytic KL terms only lower the variance
    assert np.all(np.abs(analytic - exact) < 5 * error), (analytic, exact)
    assert np.all(error < 0.02)


@pytest.mark.compiles
def test_importance_sampling_converges_to_the_exact_log_likelihood(brute_force, estimates):
    exact_elbo, exact = brute_force
    means = {}
    for k in (1, 10, 20_000):
        means[k] = np.mean(
            [estimates(PATTERNS, k)[3] for _ in range(20 if k < 1000 else 1)], axis=0
        )
    np.testing.assert_allclose(means[20_000], exact, atol=0.01)
    # E[log p_K] rises from the ELBO towards log p(x) as K grows
    gap_1 = np.mean(exact - means[1])
    gap_10 = np.mean(exact - means[10])
    assert gap_10 < gap_1 and np.mean(exact - exact_elbo) > 0.01
    assert abs(np.mean(means[1] - exact_elbo)) < 0.05


@pytest.mark.compiles
def test_samples_follow_the_models_distribution(tiny, brute_force):
    _, log_px = brute_force
    samples, _ = tiny.sample(50_000)
    f = function([], samples)
    reseed(rng_updates(samples), 3)
    drawn = f()
    counts = np.array([np.all(drawn == p, axis=1).sum() for p in PATTERNS]) / len(drawn)
    expected = np.exp(log_px)
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected * (1 - expected) / len(drawn)))


@pytest.mark.compiles
@pytest.mark.parametrize(
    "criterion",
    [VAECriterion(num_samples=2), ImportanceSamplingCriterion(num_samples=2)],
    ids=["elbo", "iwae"],
)
def test_the_gradient_matches_finite_differences(float64_graphs, criterion):
    """The ELBO's gradient, and the importance-sampling bound's (IWAE
    training), with the noise held fixed."""
    with using_floatX("float64"):
        model = make_hvae(nvis=5, nhid=2, bottom_nhid=2, hidden=4, irange=0.5, seed=5, layer=Tanh)
        X = model.get_input_space().make_theano_batch()
        eps2 = pt.tensor3("eps2", dtype="float64")
        eps1 = pt.tensor3("eps1", dtype="float64")
        model.posterior.sample_from_epsilon = lambda shape: eps2
        model.bottom_posterior.sample_from_epsilon = lambda shape: eps1
        cost = criterion.expr(model, X)
        params = model.get_params()
        f = function([X, eps2, eps1], [cost, *pytensor.grad(cost, params)])
    rng = np.random.default_rng(0)
    x = binary_data(6, 5, seed=6).astype("float64")
    noise = (rng.standard_normal((2, 6, 2)), rng.standard_normal((2, 6, 2)))
    analytic = f(x, *noise)[1:]
    checked = check_gradients_by_finite_differences(params, analytic, lambda: f(x, *noise)[0])
    assert checked == model.get_total_params() > 100
    names = {p.name.split("_")[0] for p in params}
    assert {"conditional", "posterior", "bottom", "prior"} <= names


def test_the_kl_registry_picks_the_analytic_terms_where_they_exist():
    plain = make_hvae(nvis=4, hidden=3)
    assert isinstance(plain.kl_integrator, DiagonalGaussianPriorPosteriorKL)
    assert isinstance(plain.bottom_kl_integrator, LatentConditionalGaussianKL)
    flow = HouseholderFlowGaussian(
        name="bottom_posterior",
        mlp=MLP(layer_name="f", layers=[Tanh(layer_name="h", dim=3, irange=0.1)]),
    )
    mixed = make_hvae(nvis=4, hidden=3, prior=VampPrior(num_pseudo_inputs=3), bottom_posterior=flow)
    assert mixed.kl_integrator is None and mixed.bottom_kl_integrator is None


@pytest.mark.compiles
def test_the_analytic_and_monte_carlo_bounds_of_a_vamp_model_agree(float64_graphs):
    """No closed form on the top layer: both bounds estimate the same ELBO."""
    model = make_hvae(nvis=6, hidden=5, prior=VampPrior(num_pseudo_inputs=4), seed=9)
    X = model.get_input_space().make_theano_batch()
    bound = model.log_likelihood_lower_bound(X, 4000)
    mc = model.log_likelihood_lower_bound(X, 4000, approximate_kl=True)
    f = function([X], [bound, mc])
    a, b = f(binary_data(3, 6, seed=2))
    np.testing.assert_allclose(a, b, atol=0.1)


def test_every_network_is_trained_and_named_once():
    model = make_hvae(nvis=4, hidden=3, learn_prior=False)
    names = [p.name for p in model.get_params()]
    assert len(names) == len(set(names))
    assert {n.split("_h_")[0] for n in names if "_h_" in n} == {
        "conditional",
        "posterior",
        "bottom_prior",
        "bottom_posterior",
    }
    assert not any(n.startswith("prior_") for n in names)
    assert model.networks() == (
        model.posterior,
        model.bottom_posterior,
        model.bottom_prior,
        model.conditional,
    )


def test_bad_components_are_refused():
    from pylearn_vae.models.vae.hierarchical import HierarchicalVAE

    parts = make_hvae(nvis=4, hidden=3)
    kwargs = dict(
        nvis=4,
        nhid=2,
        bottom_nhid=3,
        prior=parts.prior,
        conditional=parts.conditional,
        posterior=parts.posterior,
        bottom_prior="a network",
        bottom_posterior=parts.bottom_posterior,
    )
    with pytest.raises(TypeError, match="HierarchicalVAE bottom_prior must be a"):
        HierarchicalVAE(**kwargs)
    with pytest.raises(ValueError, match="four different objects"):
        HierarchicalVAE(**{**kwargs, "bottom_prior": parts.posterior})
    with pytest.raises(ValueError, match="bottom_nhid"):
        make_hvae(bottom_nhid=0)
