"""Pylearn2's public contracts of ``models.vae.*`` and ``costs.vae``.

Each test names the contract it checks. Components are exercised with a
stand-in object that has only what Pylearn2 promised ``set_vae`` needs: a
NumPy ``RandomState`` as ``rng`` and a ``batch_size``. Symbolic results are
compiled once (``compiled`` fixture) and checked against closed forms.
"""

from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import stats

from pylearn_vae.compile import function
from pylearn_vae.costs.vae import ImportanceSamplingCriterion, VAECriterion
from pylearn_vae.models.mlp import MLP, CompositeLayer, Linear, RectifiedLinear
from pylearn_vae.models.vae import VAE
from pylearn_vae.models.vae.component import VAEComponent
from pylearn_vae.models.vae.conditional import BernoulliVector, Conditional, DiagonalGaussian
from pylearn_vae.models.vae.kl import DiagonalGaussianPriorPosteriorKL, find_integrator_for
from pylearn_vae.models.vae.prior import DiagonalGaussianPrior, Prior
from pylearn_vae.space import CompositeSpace, VectorSpace
from pylearn_vae.utils.rng import SymbolicRNG
from tests.helpers.models import binary_data, make_vae

D = 5  # width of every distribution below
PRIOR_MU = np.array([1.0, -1.0, 0.5, 0.0, 2.0], dtype="float32")
PRIOR_SIGMA = np.array([2.0, 0.5, 1.0, 1.0, 3.0], dtype="float32")


class StandIn:
    """All that ``set_vae`` may rely on (no ``srng``, no spaces, no params)."""

    def __init__(self, seed=11, batch_size=7):
        self.rng = np.random.RandomState(seed)
        self.batch_size = batch_size


class ParameterFreePrior(Prior):
    def initialize_parameters(self, nhid):
        super().initialize_parameters(nhid)
        self._params = []


class TwoHeaded(Conditional):
    """A user-defined conditional with a two-part parameter space."""

    def _get_default_output_layer(self):
        return CompositeLayer(
            layer_name="heads",
            layers=[
                Linear(layer_name="a", dim=self.ndim, irange=0.1),
                Linear(layer_name="b", dim=self.ndim, irange=0.1),
            ],
        )

    def _get_required_mlp_output_space(self):
        return CompositeSpace([VectorSpace(self.ndim), VectorSpace(self.ndim)])


def hidden_mlp(**layer_kwargs):
    return MLP(layers=[Linear(layer_name="h", dim=D, irange=0.1, **layer_kwargs)])


def ready(conditional_cls, seed=11, **layer_kwargs):
    """A conditional attached to a stand-in and initialised on D inputs."""
    mlp = hidden_mlp(**layer_kwargs)
    conditional = conditional_cls(mlp=mlp, name="conditional")
    conditional.set_vae(StandIn(seed))
    conditional.initialize_parameters(input_space=VectorSpace(D), ndim=D)
    return conditional, mlp


# -- set_vae / get_vae ---------------------------------------------------


def components():
    return [
        ParameterFreePrior(),
        DiagonalGaussianPrior(),
        TwoHeaded(mlp=hidden_mlp(), name="conditional"),
        BernoulliVector(mlp=hidden_mlp(), name="conditional"),
        DiagonalGaussian(mlp=hidden_mlp(), name="posterior"),
    ]


@pytest.mark.parametrize("component", components(), ids=lambda c: type(c).__name__)
def test_set_vae_needs_only_rng_and_batch_size(component):
    vae = StandIn(batch_size=13)
    assert component.vae is None and component.get_vae() is None
    component.set_vae(vae)
    assert component.vae is vae
    assert component.get_vae() is vae
    assert component.rng is vae.rng
    assert component.batch_size == 13
    assert isinstance(component.srng, SymbolicRNG)
    assert component.theano_rng is component.srng


@pytest.mark.parametrize("component", components(), ids=lambda c: type(c).__name__)
def test_set_vae_twice_raises_runtime_error(component):
    component.set_vae(StandIn())
    with pytest.raises(RuntimeError, match="already belongs to another VAE"):
        component.set_vae(StandIn())


def test_set_vae_seeds_noise_with_one_randint_draw():
    vae = StandIn(seed=5)
    DiagonalGaussianPrior().set_vae(vae)
    reference = np.random.RandomState(5)
    reference.randint(2**30)
    assert vae.rng.randint(10**9) == reference.randint(10**9)


def test_set_vae_rejects_objects_without_a_randint_generator():
    class NoRng:
        batch_size = 3

    class NoBatchSize:
        rng = np.random.RandomState(0)

    with pytest.raises(TypeError, match="randint"):
        DiagonalGaussianPrior().set_vae(NoRng())
    with pytest.raises(TypeError, match="batch_size"):
        BernoulliVector(mlp=hidden_mlp(), name="c").set_vae(NoBatchSize())


def test_prior_and_conditional_share_one_set_vae():
    assert Prior.set_vae is VAEComponent.set_vae
    assert Conditional.set_vae is VAEComponent.set_vae
    assert Prior.get_vae is Conditional.get_vae


def test_vae_hands_itself_to_its_components():
    vae = make_vae(nvis=6, nhid=2)
    for part in (vae.prior, vae.conditional, vae.posterior):
        assert part.vae is vae and part.get_vae() is vae
        assert part.rng is vae.rng
    names = {part.srng.name for part in (vae.prior, vae.conditional, vae.posterior)}
    assert names == {"prior", "conditional", "posterior"}


def test_vae_refuses_components_whose_noise_names_clash():
    with pytest.raises(ValueError, match="different names"):
        VAE(
            nvis=4,
            nhid=2,
            prior=DiagonalGaussianPrior(),
            conditional=BernoulliVector(
                mlp=MLP(layers=[RectifiedLinear(layer_name="d", dim=3, irange=0.1)]), name="x"
            ),
            posterior=DiagonalGaussian(
                mlp=MLP(layers=[RectifiedLinear(layer_name="e", dim=3, irange=0.1)]), name="x"
            ),
        )


# -- Conditional ---------------------------------------------------------


def test_conditional_rejects_an_mlp_with_its_own_input_space():
    mlp = MLP(nvis=D, layers=[Linear(layer_name="h", dim=D, irange=0.1)])
    with pytest.raises(ValueError, match="input space has not been defined"):
        BernoulliVector(mlp=mlp, name="conditional")


def test_conditional_rejects_an_output_layer_of_the_wrong_space():
    mlp = MLP(
        layers=[
            Linear(layer_name="h", dim=D, irange=0.1),
            Linear(layer_name="mu", dim=D, irange=0.1),
        ]
    )
    conditional = TwoHeaded(mlp=mlp, name="conditional", output_layer_required=False)
    conditional.set_vae(StandIn())
    with pytest.raises(ValueError, match="outputs VectorSpace"):
        conditional.initialize_parameters(input_space=VectorSpace(D), ndim=D)


def test_conditional_initialize_parameters_wires_the_mlp():
    mlp = hidden_mlp()
    conditional = TwoHeaded(mlp=mlp, name="conditional")
    conditional.set_vae(StandIn())
    space = VectorSpace(D)
    conditional.initialize_parameters(input_space=space, ndim=3)
    assert conditional.input_space is space
    assert conditional.ndim == 3
    assert mlp.get_mlp() is conditional
    assert mlp.input_space is space
    assert conditional.get_params() == mlp.get_params()
    assert [p.name for p in conditional.get_params()] == [
        "conditional_h_W",
        "conditional_h_b",
        "conditional_a_W",
        "conditional_a_b",
        "conditional_b_W",
        "conditional_b_b",
    ]


@pytest.mark.compiles
def test_conditional_delegates_weights_lr_scalers_and_updates_to_its_mlp():
    conditional, mlp = ready(TwoHeaded, W_lr_scale=0.25, max_col_norm=0.01)
    np.testing.assert_array_equal(conditional.get_weights(), mlp.get_weights())
    assert conditional.get_weights().shape == (D, D)
    assert conditional.get_lr_scalers() == mlp.get_lr_scalers()
    assert list(conditional.get_lr_scalers().values()) == [0.25]
    W = mlp.layers[0].W
    updates = OrderedDict([(W, W * 100.0)])
    conditional.modify_updates(updates)
    f = function([], updates[W])
    norms = np.sqrt((f() ** 2).sum(axis=0))
    np.testing.assert_allclose(norms, 0.01, rtol=1e-5)


def test_bernoulli_refuses_the_reparametrization_trick():
    conditional, _ = ready(BernoulliVector)
    with pytest.raises(ValueError, match="reparametrization trick"):
        conditional.sample_from_conditional([pt.fmatrix("s")], epsilon=pt.ftensor3("e"))
    with pytest.raises(ValueError, match="num_samples"):
        conditional.sample_from_conditional([pt.fmatrix("s")])


def test_base_classes_raise_not_implemented_for_the_distribution_methods():
    conditional, _ = ready(TwoHeaded)
    with pytest.raises(NotImplementedError, match="reparametrization trick"):
        conditional.sample_from_epsilon((2, 3))
    for call in (
        lambda: conditional.conditional_expectation((None,)),
        lambda: conditional.sample_from_conditional((None,), num_samples=1),
        lambda: conditional.log_conditional(None, (None,)),
        lambda: ParameterFreePrior().sample_from_p_z(3),
        lambda: ParameterFreePrior().log_p_z(None),
    ):
        with pytest.raises(NotImplementedError, match="does not implement"):
            call()


def test_default_channels_are_empty():
    conditional, _ = ready(BernoulliVector)
    assert conditional.monitoring_channels_from_conditional_params((pt.fmatrix(),)) == {}
    assert DiagonalGaussianPrior().monitoring_channels_from_prior_params() == {}


# -- numbers from one compiled function ------------------------------------


@pytest.fixture(scope="module")
def compiled():
    """Every distribution method on symbolic inputs, compiled once."""
    prior = DiagonalGaussianPrior()
    prior.set_vae(StandIn(3))
    prior.initialize_parameters(nhid=D)
    # log_p_z must follow the (learnable) parameters, not a fixed N(0, 1).
    prior.prior_mu.set_value(PRIOR_MU)
    prior.log_prior_sigma.set_value(np.log(PRIOR_SIGMA))
    bernoulli, _ = ready(BernoulliVector, seed=4)
    gaussian, gaussian_mlp = ready(DiagonalGaussian, seed=6)
    twin = DiagonalGaussian(mlp=hidden_mlp(), name="conditional")
    twin.set_vae(StandIn(6))  # same seed as ``gaussian``: same noise
    twin.initialize_parameters(input_space=VectorSpace(D), ndim=D)

    S = pt.fmatrix("S")
    mu, log_sigma = pt.fmatrix("mu"), pt.fmatrix("log_sigma")
    samples3 = pt.ftensor3("samples3")
    eps3 = pt.ftensor3("eps3")
    X = pt.fmatrix("X")
    enc = gaussian.encode_conditional_params(X)
    inputs = [S, mu, log_sigma, samples3, eps3, X]
    outputs = {
        "prior_sample": prior.sample_from_p_z(10),
        "prior_log_p": prior.log_p_z(samples3),
        "bern_sample": bernoulli.sample_from_conditional([S], num_samples=S.shape[0]),
        "bern_mean": bernoulli.conditional_expectation([S]),
        "bern_log": bernoulli.log_conditional(samples3, [S]),
        "gauss_sample": gaussian.sample_from_conditional([mu, log_sigma], num_samples=2),
        "gauss_reparam": gaussian.sample_from_conditional([mu, log_sigma], epsilon=eps3),
        "gauss_mean": gaussian.conditional_expectation([mu, log_sigma]),
        "gauss_log": gaussian.log_conditional(samples3, [mu, log_sigma]),
        "epsilon": gaussian.sample_from_epsilon((2, 10, D)),
        # the twin draws in the same order as ``gaussian``
        "twin_sample": twin.sample_from_conditional([mu, log_sigma], num_samples=2),
        "twin_epsilon": twin.sample_from_epsilon((2, 10, D)),
        "enc_mu": enc[0],
        "enc_log_sigma": enc[1],
        "mlp_mu": gaussian_mlp.fprop(X)[0],
        "mlp_log_sigma": gaussian_mlp.fprop(X)[1],
    }
    f = function(inputs, list(outputs.values()), on_unused_input="ignore")
    rng = np.random.default_rng(0)
    values = {
        "S": rng.normal(size=(4, D)).astype("float32"),
        "mu": rng.normal(size=(4, D)).astype("float32"),
        "log_sigma": (0.3 * rng.normal(size=(4, D))).astype("float32"),
        "samples3": (rng.random((3, 4, D)) < 0.5).astype("float32"),
        "eps3": rng.normal(size=(3, 4, D)).astype("float32"),
        "X": rng.normal(size=(4, D)).astype("float32"),
    }
    first = dict(zip(outputs, f(*values.values())))
    second = dict(zip(outputs, f(*values.values())))
    return values, first, second


@pytest.mark.compiles
def test_prior_samples_and_log_density(compiled):
    values, out, again = compiled
    assert out["prior_sample"].shape == (10, D)
    assert not np.array_equal(out["prior_sample"], again["prior_sample"])
    expected = stats.norm.logpdf(values["samples3"], PRIOR_MU, PRIOR_SIGMA).sum(axis=-1)
    np.testing.assert_allclose(out["prior_log_p"], expected, rtol=1e-5)
    spread = np.abs(out["prior_sample"] - PRIOR_MU) / PRIOR_SIGMA
    assert spread.max() < 6


@pytest.mark.compiles
def test_bernoulli_vector_numbers(compiled):
    values, out, _ = compiled
    S, samples = values["S"], values["samples3"]
    assert out["bern_sample"].shape == S.shape
    assert set(np.unique(out["bern_sample"])) <= {0.0, 1.0}
    p = 1 / (1 + np.exp(-S.astype("float64")))
    np.testing.assert_allclose(out["bern_mean"], p, rtol=1e-5)
    expected = (samples * np.log(p) + (1 - samples) * np.log1p(-p)).sum(axis=-1)
    assert out["bern_log"].shape == (3, 4)
    np.testing.assert_allclose(out["bern_log"], expected, rtol=1e-4)


@pytest.mark.compiles
def test_diagonal_gaussian_numbers(compiled):
    values, out, again = compiled
    mu, log_sigma, eps = values["mu"], values["log_sigma"], values["eps3"]
    assert out["gauss_sample"].shape == mu.shape
    assert not np.array_equal(out["gauss_sample"], again["gauss_sample"])
    np.testing.assert_allclose(out["gauss_reparam"], mu + np.exp(log_sigma) * eps, rtol=1e-5)
    np.testing.assert_array_equal(out["gauss_mean"], mu)
    expected = stats.norm.logpdf(values["samples3"], mu, np.exp(log_sigma)).sum(axis=-1)
    np.testing.assert_allclose(out["gauss_log"], expected, rtol=1e-4)
    assert out["epsilon"].shape == (2, 10, D)


@pytest.mark.compiles
def test_noise_is_seeded_from_the_vae_rng(compiled):
    _, out, again = compiled
    np.testing.assert_array_equal(out["gauss_sample"], out["twin_sample"])
    np.testing.assert_array_equal(out["epsilon"], out["twin_epsilon"])
    assert not np.array_equal(out["epsilon"], again["epsilon"])


@pytest.mark.compiles
def test_encode_conditional_params_is_the_mlp_output(compiled):
    _, out, _ = compiled
    np.testing.assert_array_equal(out["enc_mu"], out["mlp_mu"])
    np.testing.assert_array_equal(out["enc_log_sigma"], out["mlp_log_sigma"])


# -- Prior -----------------------------------------------------------------


def test_diagonal_gaussian_prior_parameters_keep_pylearn2_names():
    prior = DiagonalGaussianPrior()
    prior.set_vae(StandIn())
    prior.initialize_parameters(nhid=4)
    assert prior.get_params() == [prior.prior_mu, prior.log_prior_sigma]
    assert [p.name for p in prior.get_params()] == ["prior_mu", "prior_log_sigma"]
    assert prior.nhid == 4


def test_prior_sampling_before_set_vae_is_a_clear_error():
    prior = DiagonalGaussianPrior()
    prior.initialize_parameters(nhid=2)
    with pytest.raises(RuntimeError, match="set_vae"):
        prior.sample_from_p_z(3)


# -- VAE -------------------------------------------------------------------


def test_vae_get_weights_are_the_encoders():
    vae = make_vae(nvis=6, nhid=2, hidden=4)
    W = vae.get_weights()
    assert W.shape == (6, 4)  # visible units x encoder hidden units
    np.testing.assert_array_equal(W, vae.posterior.mlp.layers[0].W.get_value())


@pytest.mark.compiles
def test_a_script_renamed_from_theano_runs_with_plain_pytensor_function(
    float64_graphs, monkeypatch
):
    """Pylearn2 scripts build inputs with ``T.matrix`` (float64 at PyTensor's
    default floatX) and compile with ``theano.function``. Renamed, they must
    compile and give the bound that the package's float32 graph gives for
    the same noise."""
    vae = make_vae(nvis=6, nhid=2, irange=0.5, seed=4)
    eps = pt.tensor3("eps", dtype="float32")
    monkeypatch.setattr(vae.posterior, "sample_from_epsilon", lambda shape: eps)
    X64, X32 = pt.matrix("X", dtype="float64"), pt.fmatrix("X")
    plain = pytensor.function([X64, eps], vae.log_likelihood_lower_bound(X64, num_samples=3))
    ours = function([X32, eps], vae.log_likelihood_lower_bound(X32, num_samples=3))
    x = binary_data(5, 6, seed=3)
    noise = np.random.default_rng(5).standard_normal((3, 5, 2)).astype("float32")
    bound = plain(x.astype("float64"), noise)
    assert bound.shape == (5,) and np.all(bound < 0)
    np.testing.assert_allclose(bound, ours(x, noise), rtol=1e-5)


def test_vae_finds_its_kl_integrator():
    vae = make_vae(nvis=6, nhid=2)
    assert isinstance(vae.kl_integrator, DiagonalGaussianPriorPosteriorKL)
    assert find_integrator_for(vae.prior, vae.conditional) is None


def test_kl_integrator_validates_its_prior_and_posterior():
    vae = make_vae(nvis=6, nhid=2)
    with pytest.raises(ValueError, match="expects a posterior of class DiagonalGaussian"):
        vae.kl_integrator.kl_divergence(
            phi=(pt.fmatrix(),), theta=(), prior=vae.prior, posterior=vae.conditional
        )


@pytest.fixture(scope="module")
def gaussian_visible_channels():
    """A VAE whose conditional is a DiagonalGaussian, and its channel values."""
    vae = VAE(
        nvis=6,
        nhid=2,
        prior=DiagonalGaussianPrior(),
        conditional=DiagonalGaussian(
            mlp=MLP(layers=[RectifiedLinear(layer_name="d", dim=4, irange=0.5)]),
            name="conditional",
        ),
        posterior=DiagonalGaussian(
            mlp=MLP(layers=[RectifiedLinear(layer_name="e", dim=4, irange=0.5)]),
            name="posterior",
        ),
        seed=3,
    )
    # Make the decoder's sigma depend on the input so that min < max.
    log_sigma_layer = vae.conditional.mlp.layers[-1].layers[1]
    log_sigma_layer.W.set_value(np.full((4, 6), 0.7, dtype="float32"))
    X = pt.fmatrix("X")
    channels = vae.get_monitoring_channels(X)
    f = function([X], list(channels.values()))
    data = np.random.default_rng(1).normal(size=(9, 6)).astype("float32")
    return dict(zip(channels, (float(v) for v in f(data))))


@pytest.mark.compiles
def test_vae_reports_the_conditionals_channels(gaussian_visible_channels):
    ch = gaussian_visible_channels
    for who in ("posterior", "conditional"):
        names = [f"{who}_sigma_{s}" for s in ("min", "max", "mean", "std")]
        assert all(name in ch for name in names), sorted(ch)
        assert 0 < ch[f"{who}_sigma_min"] <= ch[f"{who}_sigma_mean"] <= ch[f"{who}_sigma_max"]
    assert ch["conditional_sigma_min"] < ch["conditional_sigma_max"]
    assert ch["conditional_sigma_std"] > 0


# -- costs -----------------------------------------------------------------


def test_costs_validate_num_samples():
    with pytest.raises(TypeError, match="num_samples"):
        ImportanceSamplingCriterion()
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="num_samples"):
            ImportanceSamplingCriterion(num_samples=bad)
        with pytest.raises(ValueError, match="num_samples"):
            VAECriterion(num_samples=bad)
    assert VAECriterion(num_samples=3).num_samples == 3


def test_vae_criterion_channel_names():
    vae = make_vae(nvis=6, nhid=2)
    channels = VAECriterion(num_samples=2).get_monitoring_channels(vae, pt.fmatrix("X"))
    assert list(channels) == ["kl_divergence_term", "expectation_term"]


def test_pickles_from_earlier_versions_get_the_new_attribute_names():
    prior = DiagonalGaussianPrior.__new__(DiagonalGaussianPrior)
    owner = StandIn()
    mu, log_sigma = object(), object()
    prior.__setstate__({"_vae": owner, "mu": mu, "log_sigma": log_sigma, "_params": []})
    assert prior.vae is owner and prior.get_vae() is owner
    assert prior.prior_mu is mu and prior.log_prior_sigma is log_sigma
    assert prior.dataset_yaml_src is None
