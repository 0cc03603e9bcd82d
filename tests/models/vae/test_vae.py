"""The VAE: shapes, noise, Pylearn2's documented behaviours, bad input, numerics."""

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pylearn_vae.compile import function
from pylearn_vae.costs.vae import ImportanceSamplingCriterion, VAECriterion
from pylearn_vae.models.mlp import MLP, Linear, RectifiedLinear, Tanh
from pylearn_vae.models.vae import VAE, ApproximateKLWarning
from pylearn_vae.models.vae.conditional import BernoulliVector, DiagonalGaussian
from pylearn_vae.models.vae.kl import DiagonalGaussianPriorPosteriorKL
from pylearn_vae.models.vae.prior import DiagonalGaussianPrior, Prior
from pylearn_vae.space import SpaceMismatchError
from pylearn_vae.utils import floatX, sharedX, using_floatX
from tests.helpers.models import binary_data, make_vae
from tests.helpers.references import check_gradients_by_finite_differences

NVIS, NHID = 12, 3


class StandardNormalPrior(Prior):
    """A parameter-free prior that no registered integrator handles."""

    def sample_from_p_z(self, num_samples, **kwargs):
        return self.srng.normal(size=(num_samples, self.nhid))

    def log_p_z(self, z):
        return (-0.5 * np.float32(np.log(2 * np.pi)) - 0.5 * pt.sqr(z)).sum(axis=-1)


@pytest.fixture(scope="module")
def vae():
    return make_vae(nvis=NVIS, nhid=NHID, irange=0.5)


@pytest.fixture(scope="module")
def data():
    return binary_data(20, NVIS, seed=1)


@pytest.fixture(scope="module")
def everything(vae):
    """One compiled function returning every method's output for S=1 and S=3."""
    X = vae.get_input_space().make_theano_batch("X")
    phi = vae.encode_phi(X)
    theta = vae.decode_theta(phi[0])
    kl1, exp1 = vae.log_likelihood_lower_bound(X, 1, return_individual_terms=True)
    outs = {
        "lb1": vae.log_likelihood_lower_bound(X, 1),
        "lb3": vae.log_likelihood_lower_bound(X, 3),
        "lb3_mc": vae.log_likelihood_lower_bound(X, 3, approximate_kl=True),
        "kl1": kl1,
        "exp1": exp1,
        "is1": vae.log_likelihood_approximation(X, 1),
        "is3": vae.log_likelihood_approximation(X, 3),
        "phi_mu": phi[0],
        "phi_log_sigma": phi[1],
        "theta": theta[0],
        "means": vae.means_from_theta(theta),
        "kl_per_component": vae.per_component_kl_divergence_term(phi, vae.get_prior_theta()),
        "rec": vae.reconstruct(X)[0],
        "rec_means": vae.reconstruct(X)[1],
        "rec_noisy": vae.reconstruct(X, noisy_encoding=True, return_sample_means=False),
        "z_q3": vae.sample_from_q_z_given_x(vae.sample_from_epsilon((3, X.shape[0], NHID)), phi),
        "log_q3": vae.log_q_z_given_x(
            vae.sample_from_q_z_given_x(vae.sample_from_epsilon((3, X.shape[0], NHID)), phi), phi
        ),
        "log_p_z3": vae.log_p_z(
            vae.sample_from_q_z_given_x(vae.sample_from_epsilon((3, X.shape[0], NHID)), phi)
        ),
    }
    samples, sample_means = vae.sample(4)
    outs["samples"] = samples
    outs["sample_means"] = sample_means
    outs["z_p"] = vae.sample_from_p_z(4)
    outs.update({f"mon_{k}": v for k, v in vae.get_monitoring_channels(X).items()})
    f = function([X], list(outs.values()))
    names = list(outs)
    return lambda x: dict(zip(names, f(x)))


@pytest.mark.compiles
def test_shapes_for_one_and_several_samples(everything, data):
    out = everything(data)
    n = len(data)
    expected = {
        "lb1": (n,),
        "lb3": (n,),
        "lb3_mc": (n,),
        "kl1": (n,),
        "exp1": (n,),
        "is1": (n,),
        "is3": (n,),
        "phi_mu": (n, NHID),
        "phi_log_sigma": (n, NHID),
        "theta": (n, NVIS),
        "means": (n, NVIS),
        "kl_per_component": (n, NHID),
        "rec": (n, NVIS),
        "rec_means": (n, NVIS),
        "rec_noisy": (n, NVIS),
        "z_q3": (3, n, NHID),
        "log_q3": (3, n),
        "log_p_z3": (3, n),
        "samples": (4, NVIS),
        "sample_means": (4, NVIS),
        "z_p": (4, NHID),
    }
    for name, shape in expected.items():
        assert out[name].shape == shape, name
        assert out[name].dtype == np.dtype(floatX()), name
    for name in (
        "mon_reconstruction_mse",
        "mon_posterior_sigma_min",
        "mon_posterior_sigma_max",
        "mon_posterior_sigma_mean",
        "mon_posterior_sigma_std",
    ):
        assert out[name].shape == ()


@pytest.mark.compiles
def test_values_are_consistent(everything, data):
    out = everything(data)
    np.testing.assert_allclose(
        out["kl_per_component"].sum(axis=1), out["kl1"], rtol=1e-5, atol=1e-5
    )
    assert np.all(out["kl1"] >= 0)
    assert np.all(out["lb1"] < 0) and np.all(out["is1"] < 0)
    np.testing.assert_allclose(out["means"], 1 / (1 + np.exp(-out["theta"])), rtol=1e-5)
    sig = np.exp(out["phi_log_sigma"])
    np.testing.assert_allclose(out["mon_posterior_sigma_min"], sig.min(), rtol=1e-5)
    np.testing.assert_allclose(out["mon_posterior_sigma_mean"], sig.mean(), rtol=1e-5)
    np.testing.assert_allclose(out["mon_posterior_sigma_std"], sig.std(), rtol=1e-4)


@pytest.mark.compiles
def test_bernoulli_samples_are_binary(everything, data):
    out = everything(data)
    for name in ("samples", "rec", "rec_noisy"):
        assert set(np.unique(out[name])) <= {0.0, 1.0}, name
    assert 0.0 < out["samples"].mean() < 1.0 or out["samples"].size < 50


@pytest.mark.compiles
def test_successive_calls_draw_fresh_noise(everything, data):
    a, b = everything(data), everything(data)
    for name in ("lb1", "is3", "samples", "z_p", "rec_noisy", "z_q3"):
        assert not np.array_equal(a[name], b[name]), name
    # Deterministic paths do not change.
    np.testing.assert_array_equal(a["kl1"], b["kl1"])
    np.testing.assert_array_equal(a["rec_means"], b["rec_means"])


@pytest.mark.compiles
def test_identical_seeds_give_identical_noise(data):
    def run(seed):
        v = make_vae(nvis=NVIS, nhid=NHID, irange=0.5, seed=seed)
        X = v.get_input_space().make_theano_batch()
        f = function([X], [v.log_likelihood_lower_bound(X, 2), v.sample(3)[0]])
        return [f(data) for _ in range(2)]

    a, b, c = run(3), run(3), run(4)
    for call_a, call_b in zip(a, b):
        for x, y in zip(call_a, call_b):
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0][0], c[0][0])


@pytest.mark.compiles
def test_fixed_noise_identities(vae, data):
    """With shared noise: IS(k=1) == ELBO with Monte Carlo KL, and ELBO == E - KL."""
    eps = pt.tensor3("eps", dtype=floatX())
    X = vae.get_input_space().make_theano_batch()
    original = vae.posterior.sample_from_epsilon
    vae.posterior.sample_from_epsilon = lambda shape: eps
    try:
        lb = vae.log_likelihood_lower_bound(X, 1, approximate_kl=True)
        est = vae.log_likelihood_approximation(X, 1)
        lb_analytic = vae.log_likelihood_lower_bound(X, 1)
        kl, expectation = vae.log_likelihood_lower_bound(X, 1, return_individual_terms=True)
    finally:
        vae.posterior.sample_from_epsilon = original
    f = function([X, eps], [lb, est, lb_analytic, kl, expectation])
    noise = np.random.default_rng(0).standard_normal((1, len(data), NHID)).astype("float32")
    a, b, c, kl_value, exp_value = f(data, noise)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(c, exp_value - kl_value, rtol=1e-6, atol=1e-5)
    assert not np.allclose(a, c)  # the Monte Carlo KL differs from the analytic one


@pytest.mark.compiles
def test_importance_sampling_estimate_grows_with_k():
    v = make_vae(nvis=NVIS, nhid=NHID, seed=2)
    # Large random weights everywhere (the default output layers start near zero),
    # so that the posterior is a poor proposal and the bound is loose.
    rng = np.random.default_rng(9)
    v.set_param_values([rng.uniform(-1.0, 1.0, p.shape) for p in v.get_param_values()])
    x = binary_data(400, NVIS, seed=3)
    X = v.get_input_space().make_theano_batch()
    ks = (1, 5, 50)
    f = function([X], [v.log_likelihood_approximation(X, k).mean() for k in ks])
    means = np.mean([f(x) for _ in range(5)], axis=0)
    # E[log p_k] is non-decreasing in k; on this untrained model the gaps are large.
    assert means[0] + 0.1 < means[1] < means[2] - 0.05, means
    elbo = function([X], v.log_likelihood_lower_bound(X, 1).mean())
    assert np.mean([elbo(x) for _ in range(5)]) < means[2]


@pytest.mark.compiles
def test_gradient_matches_finite_differences(float64_graphs):
    with using_floatX("float64"):
        v = make_vae(nvis=5, nhid=2, hidden=4, irange=0.5, seed=5, layer=Tanh)
        X = v.get_input_space().make_theano_batch()
        eps = pt.tensor3("eps", dtype="float64")
        v.posterior.sample_from_epsilon = lambda shape: eps
        cost = VAECriterion(num_samples=2).expr(v, X)
        params = v.get_params()
        f = function([X, eps], [cost, *pytensor.grad(cost, params)])
    rng = np.random.default_rng(0)
    x = binary_data(6, 5, seed=6).astype("float64")
    noise = rng.standard_normal((2, 6, 2))
    analytic = f(x, noise)[1:]
    checked = check_gradients_by_finite_differences(params, analytic, lambda: f(x, noise)[0])
    assert checked == v.get_total_params() > 50


@pytest.mark.compiles
def test_sgd_with_momentum_lowers_the_criterion():
    v = make_vae(nvis=NVIS, nhid=NHID, hidden=16, irange=0.1, seed=7)
    x = binary_data(500, NVIS, seed=8)
    data = sharedX(x)
    index = pt.iscalar()
    X = v.get_input_space().make_theano_batch()
    cost = VAECriterion(1).expr(v, X)
    params = v.get_params()
    grads = pytensor.grad(cost, params)
    updates = {}
    lr, momentum = np.float32(0.05), np.float32(0.9)
    for p, g in zip(params, grads):
        vel = sharedX(np.zeros_like(p.get_value()))
        updates[vel] = momentum * vel - lr * g
        updates[p] = p + updates[vel]
    step = function([index], cost, updates=updates, givens={X: data[index * 50 : (index + 1) * 50]})
    evaluate = function([X], cost)
    before = np.mean([evaluate(x) for _ in range(3)])
    for _epoch in range(30):
        for i in range(10):
            step(i)
    after = np.mean([evaluate(x) for _ in range(3)])
    assert before > 8.0
    assert after < before - 2.0, (before, after)


@pytest.mark.compiles
def test_importance_sampling_criterion_is_differentiable(vae, data):
    X = vae.get_input_space().make_theano_batch()
    cost = ImportanceSamplingCriterion(num_samples=4)
    grads, _ = cost.get_gradients(vae, X)
    f = function([X], [cost.expr(vae, X), *grads.values()])
    out = f(data)
    assert np.isfinite(out[0]) and out[0] > 0
    assert all(np.all(np.isfinite(g)) for g in out[1:])
    assert any(np.abs(g).max() > 0 for g in out[1:])


# --- Pylearn2's documented behaviours -----------------------------------------


def test_params_and_learn_prior():
    v = make_vae(learn_prior=0)
    names = [p.name for p in v.get_params()]
    assert "prior_mu" not in names and "prior_log_sigma" not in names
    assert [p.name for p in v.get_prior_params()] == ["prior_mu", "prior_log_sigma"]
    assert (
        len(names)
        == len(set(names))
        == len(v.get_posterior_params()) + len(v.get_conditional_params())
    )
    assert "conditional_h_1_W" in names and "posterior_mu_W" in names
    assert "prior_mu" in [p.name for p in make_vae(learn_prior=True).get_params()]
    with pytest.raises(ValueError, match="learn_prior must be true/false"):
        make_vae(learn_prior=2)


@pytest.mark.compiles
def test_set_vae_twice_raises(vae):
    with pytest.raises(RuntimeError, match="already belongs to another VAE"):
        vae.prior.set_vae(vae)
    with pytest.raises(RuntimeError, match="already belongs to another VAE"):
        vae.conditional.set_vae(vae)


def test_non_nested_mlp_raises():
    mlp = MLP(nvis=3, layers=[Linear(layer_name="h", dim=2, irange=0.1)])
    with pytest.raises(ValueError, match="input space has not been defined"):
        BernoulliVector(mlp=mlp, name="conditional")


def test_parameter_names_must_be_unique():
    def conditional(cls, name):
        return cls(name=name, mlp=MLP(layers=[RectifiedLinear(layer_name="h", dim=4, irange=0.1)]))

    with pytest.raises(ValueError, match="parameter names must be unique.*'same_h_W'"):
        VAE(
            nvis=5,
            nhid=2,
            prior=DiagonalGaussianPrior(),
            conditional=conditional(BernoulliVector, "same"),
            posterior=conditional(DiagonalGaussian, "same"),
        )


@pytest.mark.compiles
def test_bernoulli_refuses_reparametrization(vae):
    with pytest.raises(ValueError, match="cannot sample with the reparametrization trick"):
        vae.conditional.sample_from_conditional(
            (pt.matrix(dtype="float32"),), epsilon=pt.matrix(dtype="float32"), num_samples=2
        )
    with pytest.raises(NotImplementedError, match="cannot sample with the reparametrization trick"):
        vae.conditional.sample_from_epsilon((2, 3))


@pytest.mark.compiles
def test_fallback_to_monte_carlo_kl_warns_once(data):
    v = VAE(
        nvis=NVIS,
        nhid=NHID,
        prior=StandardNormalPrior(),
        conditional=BernoulliVector(
            name="conditional", mlp=MLP(layers=[Tanh(layer_name="h", dim=4, irange=0.3)])
        ),
        posterior=DiagonalGaussian(
            name="posterior", mlp=MLP(layers=[Tanh(layer_name="h", dim=4, irange=0.3)])
        ),
    )
    assert v.kl_integrator is None
    X = v.get_input_space().make_theano_batch()
    with pytest.warns(ApproximateKLWarning, match="estimated by Monte Carlo"):
        lb = v.log_likelihood_lower_bound(X, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v.log_likelihood_lower_bound(X, 2)
    out = function([X], lb)(data)
    assert out.shape == (len(data),) and np.all(np.isfinite(out))
    with pytest.raises(NotImplementedError, match="cannot be split per component"):
        v.per_component_kl_divergence_term(v.encode_phi(X), ())


# --- bad input -----------------------------------------------------------------


@pytest.mark.compiles
def test_data_width_must_match_nvis(vae):
    with pytest.raises(
        SpaceMismatchError, match="data has 5 columns but VectorSpace\\(dim=12\\) expects 12"
    ):
        vae.log_likelihood_lower_bound(pt.matrix(shape=(None, 5), dtype="float32"), 1)
    X = pt.matrix(dtype=floatX())  # width unknown until run time
    f = function([X], VAECriterion(1).expr(vae, X))
    with pytest.raises(Exception, match="expected 12"):
        f(np.zeros((4, 5), dtype="float32"))


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
@pytest.mark.compiles
def test_num_samples_must_be_positive_integer(vae, bad):
    X = vae.get_input_space().make_theano_batch()
    with pytest.raises(ValueError, match="num_samples must be an integer >= 1"):
        vae.log_likelihood_lower_bound(X, bad)
    with pytest.raises(ValueError, match="num_samples must be an integer >= 1"):
        vae.log_likelihood_approximation(X, bad)
    with pytest.raises(ValueError, match="num_samples must be an integer >= 1"):
        VAECriterion(num_samples=bad)


def test_incompatible_integrator_is_refused():
    with pytest.raises(
        ValueError,
        match="handles prior DiagonalGaussianPrior.*this VAE has prior StandardNormalPrior",
    ):
        VAE(
            nvis=4,
            nhid=2,
            prior=StandardNormalPrior(),
            kl_integrator=DiagonalGaussianPriorPosteriorKL(),
            conditional=BernoulliVector(
                name="c", mlp=MLP(layers=[Tanh(layer_name="h", dim=3, irange=0.1)])
            ),
            posterior=DiagonalGaussian(
                name="p", mlp=MLP(layers=[Tanh(layer_name="h", dim=3, irange=0.1)])
            ),
        )


def test_mlp_output_must_match_conditional():
    bad = BernoulliVector(
        name="conditional",
        output_layer_required=False,
        mlp=MLP(layers=[Linear(layer_name="out", dim=5, irange=0.1)]),
    )
    with pytest.raises(
        ValueError,
        match="outputs VectorSpace\\(dim=5\\) but BernoulliVector needs VectorSpace\\(dim=12\\)",
    ):
        VAE(
            nvis=12,
            nhid=2,
            prior=DiagonalGaussianPrior(),
            conditional=bad,
            posterior=DiagonalGaussian(
                name="posterior", mlp=MLP(layers=[Tanh(layer_name="h", dim=3, irange=0.1)])
            ),
        )


def test_wrong_component_types_are_refused():
    with pytest.raises(TypeError, match="VAE prior must be a .*Prior, got str"):
        VAE(nvis=4, nhid=2, prior="gaussian", conditional=None, posterior=None)
    with pytest.raises(ValueError, match="nhid must be a positive integer, got 0"):
        make_vae(nhid=0)
