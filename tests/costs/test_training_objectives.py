"""What training minimises besides the plain bound: the KL term weighted during a
warm-up (``VAECriterion(kl_weight=...)`` with ``KLWarmUp``), and the
importance-sampling bound (IWAE) as a training cost."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.traversal import ancestors

from pylearn_vae.costs.vae import ImportanceSamplingCriterion, VAECriterion
from pylearn_vae.datasets import DenseDesignMatrix
from pylearn_vae.termination_criteria import EpochCounter
from pylearn_vae.train import Train
from pylearn_vae.train_extensions.kl_warm_up import KLWarmUp
from pylearn_vae.training_algorithms.learning_rule import Adam
from pylearn_vae.training_algorithms.sgd import SGD
from tests.helpers.models import binary_data, make_vae

#: Small graphs, many of them: compile quickly.
MODE = "FAST_COMPILE"


def _warm_up(epochs, start):
    cost = VAECriterion(kl_weight=start)
    extension = KLWarmUp(epochs=epochs)
    extension.setup(None, None, SimpleNamespace(cost=cost))
    return cost, extension


def test_the_weight_rises_linearly_to_one_and_stays():
    cost, extension = _warm_up(epochs=4, start=0.2)
    seen = []
    for _ in range(8):  # the first monitoring step comes before any training
        extension.on_monitor(None, None, None)
        seen.append(float(cost.kl_weight.get_value()))
    np.testing.assert_allclose(seen, [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0, 1.0], rtol=1e-6)


def test_a_resumed_warm_up_continues_where_it_stopped():
    cost, extension = _warm_up(epochs=10, start=0.0)
    for _ in range(4):
        extension.on_monitor(None, None, None)
    state = extension.state_dict()
    resumed_cost, resumed = _warm_up(epochs=10, start=0.0)
    assert float(resumed_cost.kl_weight.get_value()) == 0.0
    resumed.load_state_dict(state)
    assert float(resumed_cost.kl_weight.get_value()) == pytest.approx(0.3)
    resumed.on_monitor(None, None, None)
    assert float(resumed_cost.kl_weight.get_value()) == pytest.approx(0.4)


def test_warm_up_without_a_kl_weight_says_how_to_add_one():
    with pytest.raises(ValueError, match="kl_weight: 0.0"):
        KLWarmUp(epochs=3).setup(None, None, SimpleNamespace(cost=VAECriterion()))


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "half", True])
def test_a_bad_kl_weight_is_refused(bad):
    with pytest.raises(ValueError, match="kl_weight"):
        VAECriterion(kl_weight=bad)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_bad_warm_up_lengths_are_refused(bad):
    with pytest.raises(ValueError, match="epochs"):
        KLWarmUp(epochs=bad)


@pytest.mark.compiles
def test_the_weight_scales_only_the_kl_gradient():
    """With weight 0 the prior gets no gradient (it appears only in the KL
    term); with weight 1 it does, in the same compiled function."""
    model = make_vae(nvis=8, nhid=2, hidden=6)
    cost = VAECriterion(kl_weight=0.0)
    x = pt.matrix("x", dtype="float32")
    grads = pt.grad(cost.training_expr(model, x), model.prior.get_params())
    f = pytensor.function([x], grads, mode=MODE)
    data = binary_data(10, 8)
    assert all(np.all(g == 0) for g in f(data))
    cost.kl_weight.set_value(np.float32(1.0))
    assert all(np.abs(g).sum() > 0 for g in f(data))


def test_without_a_weight_training_minimises_the_monitored_objective():
    cost = VAECriterion()
    model = make_vae(nvis=8, nhid=2, hidden=6)
    x = pt.matrix("x", dtype="float32")
    assert cost.kl_weight is None
    graph = ancestors([cost.training_expr(model, x)])
    assert not any(getattr(v, "name", None) == "kl_weight" for v in graph)


def _train(cost, extensions, epochs, seed=0, learning_rate=3e-3):
    data = DenseDesignMatrix(X=binary_data(200, 16, seed=seed))
    model = make_vae(nvis=16, nhid=3, hidden=12, seed=seed)
    algorithm = SGD(
        learning_rate=learning_rate,
        cost=cost,
        batch_size=20,
        learning_rule=Adam(),
        monitoring_dataset={"train": data},
        termination_criterion=EpochCounter(epochs),
        theano_function_mode=MODE,
    )
    train = Train(dataset=data, model=model, algorithm=algorithm, extensions=extensions)
    train.main_loop()
    return model.monitor


@pytest.mark.compiles
def test_a_warm_up_run_records_its_weight_and_the_true_objective():
    monitor = _train(VAECriterion(kl_weight=0.0), [KLWarmUp(epochs=2)], epochs=4)
    weights = monitor.channels["train_kl_weight"].val_record
    # Each record shows the weight the epoch just trained used (the first
    # record comes before training): epochs 1, 2, 3, 4 ran with 0, 0.5, 1, 1.
    np.testing.assert_allclose(weights, [0.0, 0.0, 0.5, 1.0, 1.0])
    objective = monitor.channels["train_objective"].val_record
    terms = [
        monitor.channels[f"train_{name}"].val_record
        for name in ("kl_divergence_term", "expectation_term")
    ]
    # The monitored objective is the whole negative bound whatever the weight.
    np.testing.assert_allclose(objective, np.add(*terms), rtol=0.05)


@pytest.mark.compiles
def test_importance_weighted_training_lowers_its_objective():
    monitor = _train(ImportanceSamplingCriterion(num_samples=5), [], epochs=8, learning_rate=1e-2)
    objective = monitor.channels["train_objective"].val_record
    assert len(objective) == 9
    assert objective[-1] < objective[0] - 1.0


@pytest.mark.compiles
def test_a_several_sample_bound_trains_as_pylearn2_configured_it():
    """Pylearn2's own cost test trained ``VAECriterion(num_samples=2)``: the
    objective falls, and each record is the sum of its two terms."""
    monitor = _train(VAECriterion(num_samples=2), [], epochs=8, learning_rate=1e-2)
    objective = monitor.channels["train_objective"].val_record
    assert len(objective) == 9
    assert objective[-1] < objective[0] - 0.5
    terms = [
        monitor.channels[f"train_{name}"].val_record
        for name in ("kl_divergence_term", "expectation_term")
    ]
    np.testing.assert_allclose(objective, np.add(*terms), rtol=0.05)
