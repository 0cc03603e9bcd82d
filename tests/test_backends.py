"""The criterion, its gradient and the IS estimate agree across backends.

C ("CVM"), Numba and JAX compile the same graph with the noise given as an
input, so their outputs must agree to float32 tolerance. JAX is the route to
GPUs (``pip install -e .[jax]`` plus ``jax[cuda]``); it is tested on the CPU.
"""

import warnings

import numpy as np
import pytensor.tensor as pt
import pytest

from pylearn_vae import speedups
from pylearn_vae.compile import function
from pylearn_vae.costs.vae import VAECriterion
from pylearn_vae.utils import floatX
from tests.helpers.models import binary_data, make_hvae, make_vae

BATCH, NVIS, NHID, S = 16, 12, 3, 3
#: z1's dimension in the two-layer model.
BOTTOM = 2


def _graph(kind: str):
    """The cost, the IS estimate and the gradients of a one-layer ("vae") or a
    two-layer ("hvae") model, with its noise as inputs."""
    if kind == "vae":
        v = make_vae(nvis=NVIS, nhid=NHID, irange=0.5, seed=11)
    else:
        v = make_hvae(nvis=NVIS, nhid=NHID, bottom_nhid=BOTTOM, irange=0.5, seed=11)
    X = v.get_input_space().make_theano_batch("X", batch_size=BATCH)
    eps = [pt.tensor3("eps", dtype=floatX(), shape=(S, BATCH, NHID))]
    v.posterior.sample_from_epsilon = lambda shape: eps[0]
    if kind == "hvae":
        eps.append(pt.tensor3("eps_1", dtype=floatX(), shape=(S, BATCH, BOTTOM)))
        v.bottom_posterior.sample_from_epsilon = lambda shape: eps[1]
    cost = VAECriterion(num_samples=S)
    grads, _ = cost.get_gradients(v, X)
    outputs = [cost.expr(v, X), v.log_likelihood_approximation(X, S), *grads.values()]
    return [X, *eps], outputs


@pytest.fixture(scope="module", params=["vae", "hvae"])
def kind(request):
    return request.param


@pytest.fixture(scope="module")
def inputs(kind):
    rng = np.random.default_rng(0)
    noise = [rng.standard_normal((S, BATCH, NHID)).astype("float32")]
    if kind == "hvae":
        noise.append(rng.standard_normal((S, BATCH, BOTTOM)).astype("float32"))
    return [binary_data(BATCH, NVIS, seed=2), *noise]


@pytest.fixture(scope="module")
def reference(kind, inputs):
    import pytensor

    with pytensor.config.change_flags(warn_float64="ignore"):
        variables, outputs = _graph(kind)
        return function(variables, outputs, mode="CVM")(*inputs)


@pytest.fixture(autouse=True)
def _allow_pytensor_internal_float64(float64_graphs):
    """With a static batch size, one of PyTensor's own rewrites (a sum over an
    Alloc) multiplies by an int64 size in float64 and casts straight back.
    Our graph is float32: the tests below check every output's dtype."""


def _jax_or_skip():
    return pytest.importorskip("jax", reason="the JAX backend needs the [jax] extra")


@pytest.mark.parametrize("mode", ["NUMBA", pytest.param("JAX", marks=pytest.mark.jax)])
@pytest.mark.compiles
def test_backend_matches_c_backend(mode, kind, inputs, reference):
    if mode == "JAX":
        _jax_or_skip()
    variables, outputs = _graph(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # JAX copies RNG shared variables
        result = function(variables, outputs, mode=mode)(*inputs)
    assert len(result) == len(reference) > 10
    for got, want in zip(result, reference):
        got = np.asarray(got)
        assert got.dtype == np.float32, mode  # float32 end to end, also on JAX
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)


@pytest.mark.jax
@pytest.mark.compiles
def test_jax_draws_fresh_noise_with_internal_rngs():
    _jax_or_skip()
    v = make_vae(nvis=NVIS, nhid=NHID, irange=0.5, seed=12)
    X = v.get_input_space().make_theano_batch(batch_size=BATCH)
    cost = VAECriterion(num_samples=2)
    grads, _ = cost.get_gradients(v, X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        f = function(
            [X],
            [cost.expr(v, X), v.log_likelihood_approximation(X, 10).sum(), *grads.values()],
            mode="JAX",
        )
    x = binary_data(BATCH, NVIS, seed=3)
    first, second = f(x), f(x)
    assert np.isfinite(first[0]) and first[0] > 0
    assert first[0] != second[0] and first[1] != second[1]
    assert all(np.all(np.isfinite(g)) for g in first[2:])


@pytest.mark.jax
@pytest.mark.compiles
def test_jax_sgd_trains_and_saves_without_jax_arrays(tmp_path):
    """The training set is an input of every step: as a NumPy array JAX copied
    all of it at each call (66 ms per step for binarized MNIST on the CPU).
    After JAX steps the parameters are JAX arrays; saved files hold NumPy ones."""
    jax = _jax_or_skip()
    import h5py

    from pylearn_vae import persistence
    from pylearn_vae.datasets import DenseDesignMatrix
    from pylearn_vae.persistence.hdf5_file import read_tree, write_tree
    from pylearn_vae.training_algorithms.learning_rule import Momentum
    from pylearn_vae.training_algorithms.sgd import SGD

    model = make_vae(nvis=NVIS, nhid=NHID, irange=0.5, seed=13)
    data = DenseDesignMatrix(X=binary_data(4 * BATCH, NVIS, seed=4))
    algo = SGD(
        learning_rate=0.05,
        cost=VAECriterion(),
        batch_size=BATCH,
        learning_rule=Momentum(0.5),
        monitoring_dataset=data,
        monitoring_batch_size=2 * BATCH,
        theano_function_mode="JAX",
    )
    algo.progress = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # JAX copies RNG shared variables
        algo.setup(model, data)
        # Keeping it on the device is a speed-up (speedups.keep_on_device).
        on_device = isinstance(algo._data.container.storage[0], jax.Array)
        assert on_device == speedups.enabled()
        before = [np.array(p) for p in model.get_param_values()]
        model.monitor()
        algo.train(data)
        model.monitor()
    after = [np.asarray(p) for p in model.get_param_values()]
    assert all(np.all(np.isfinite(p)) for p in after)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    objective = model.monitor.channels["objective"].val_record
    assert len(objective) == 2 and objective[1] < objective[0]

    assert isinstance(model.get_params()[0].get_value(borrow=True), jax.Array)
    persistence.save(tmp_path / "model.pkl", model)
    pickled = (tmp_path / "model.pkl").read_bytes()
    assert b"jax._src" not in pickled and b"jaxlib" not in pickled
    loaded = persistence.load(tmp_path / "model.pkl").get_param_values()
    for a, b in zip(loaded, after, strict=True):
        np.testing.assert_array_equal(a, b)
    state = algo.state_dict()
    with h5py.File(tmp_path / "state.h5", "w") as handle:
        write_tree(handle, state)
    with h5py.File(tmp_path / "state.h5", "r") as handle:
        velocities = read_tree(handle)["learning_rule"]["state"]
    assert len(velocities) == len(after)
    assert all(isinstance(v, np.ndarray) for v in velocities.values())


@pytest.mark.jax
@pytest.mark.compiles
def test_jax_steps_of_every_batch_size_share_one_set_of_velocities():
    """JAX compiles one step per batch size; the last, smaller batch must move
    the same velocities as the others, and a checkpoint must find them all
    before the first step (it is restored before training starts)."""
    _jax_or_skip()
    from pylearn_vae.datasets import DenseDesignMatrix
    from pylearn_vae.training_algorithms.learning_rule import Momentum
    from pylearn_vae.training_algorithms.sgd import SGD

    model = make_vae(nvis=NVIS, nhid=NHID, irange=0.5, seed=14)
    data = DenseDesignMatrix(X=binary_data(2 * BATCH + 5, NVIS, seed=5))
    rule = Momentum(0.5)
    algo = SGD(
        learning_rate=0.05,
        cost=VAECriterion(),
        batch_size=BATCH,
        learning_rule=rule,
        theano_function_mode="JAX",
    )
    algo.progress = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # JAX copies RNG shared variables
        algo.setup(model, data)
        n_params = len(model.get_params())
        assert len(rule.state) == n_params  # made at set-up, before any step
        saved = {k: np.full_like(v, 0.25) for k, v in rule.state_dict()["state"].items()}
        rule.load_state_dict({"momentum": np.float32(0.5), "state": saved})
        algo._step_function(5)(np.arange(5))  # the odd-sized last batch
        assert len(rule.state) == n_params
        moved = [not np.allclose(np.asarray(v.get_value()), 0.25) for v in rule.state]
        assert all(moved)
        algo.train(data)
    assert sorted(algo._train_functions) == [5, BATCH]
    assert len(rule.state) == n_params
