"""Learning rules and schedules against hand-computed NumPy trajectories.

The objective is the quadratic f(p) = 0.5 * sum(a * p**2), gradient a * p.
"""

from collections import OrderedDict
from types import SimpleNamespace

import numpy as np
import pytensor
import pytest

from pylearn_vae.compile import function
from pylearn_vae.training_algorithms.learning_rule import (
    Adam,
    LearningRule,
    Momentum,
    MomentumAdjustor,
    RMSProp,
)
from pylearn_vae.training_algorithms.schedules import ExponentialDecay, LinearDecayOverEpoch
from pylearn_vae.training_algorithms.sgd import SGD
from pylearn_vae.utils import sharedX

A = np.array([1.0, 4.0, 0.5], dtype="float32")
P0 = np.array([1.0, -2.0, 3.0], dtype="float32")
LR = 0.1


def run(rule, steps=5, scale=None):
    p = sharedX(P0, name="p")
    grad = sharedX(A) * p
    lr = sharedX(LR)
    updates = rule.get_updates(lr, OrderedDict([(p, grad)]), {p: scale} if scale else None)
    step = function([], [], updates=updates)
    out = []
    for _ in range(steps):
        step()
        out.append(p.get_value().copy())
    return np.array(out)


def reference(update, steps=5):
    p = P0.astype("float64").copy()
    state = {}
    out = []
    for t in range(1, steps + 1):
        p = update(p, A * p, state, t)
        out.append(p.copy())
    return np.array(out)


@pytest.mark.compiles
def test_plain_sgd_with_lr_scaler():
    got = run(LearningRule(), scale=0.5)
    want = reference(lambda p, g, s, t: p - 0.5 * LR * g)
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.compiles
def test_momentum(nesterov):
    mu = 0.9

    def update(p, g, s, t):
        v = mu * s.get("v", 0.0) - LR * g
        s["v"] = v
        return p + (mu * v - LR * g if nesterov else v)

    np.testing.assert_allclose(
        run(Momentum(mu, nesterov_momentum=nesterov)), reference(update), rtol=1e-5, atol=1e-6
    )


@pytest.mark.compiles
def test_rmsprop():
    decay = 0.9

    def update(p, g, s, t):
        m = decay * s.get("m", 0.0) + (1 - decay) * g**2
        s["m"] = m
        return p - LR * g / np.maximum(np.sqrt(m), 1e-5)

    np.testing.assert_allclose(run(RMSProp(decay=decay)), reference(update), rtol=1e-5)


@pytest.mark.compiles
def test_adam():
    b1, b2, eps = 0.9, 0.999, 1e-8

    def update(p, g, s, t):
        m = b1 * s.get("m", 0.0) + (1 - b1) * g
        v = b2 * s.get("v", 0.0) + (1 - b2) * g**2
        s["m"], s["v"] = m, v
        return p - LR * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)

    np.testing.assert_allclose(run(Adam()), reference(update), rtol=1e-4)


def test_rule_arguments_are_checked():
    with pytest.raises(ValueError, match="init_momentum must be in \\[0, 1\\), got 1.5"):
        Momentum(1.5)
    with pytest.raises(ValueError, match="saturate \\(2\\) must be >= start \\(3\\)"):
        MomentumAdjustor(0.9, start=3, saturate=2)


def _algorithm(lr=1.0, momentum=0.5):
    """A real SGD (building one compiles nothing): schedules change its rate
    through ``set_learning_rate``."""
    return SGD(learning_rate=lr, learning_rule=Momentum(momentum))


def test_exponential_decay_per_minibatch():
    algo = _algorithm(lr=1e-3)
    decay = ExponentialDecay(decay_factor=1.5, min_lr=2e-4)
    seen = []
    for _ in range(6):
        decay(algo)
        seen.append(float(algo.learning_rate.get_value()))
    want = [max(1e-3 / 1.5**t, 2e-4) for t in range(1, 7)]
    np.testing.assert_allclose(seen, want, rtol=1e-6)
    assert seen[-1] == pytest.approx(2e-4)


def test_linear_decay_over_epoch():
    algo = _algorithm(lr=1.0)
    ext = LinearDecayOverEpoch(start=2, saturate=4, decay_factor=0.1)
    seen = []
    for _ in range(6):
        ext.on_monitor(None, None, algo)
        seen.append(float(algo.learning_rate.get_value()))
    # count 1: before start; counts 2, 3: linear steps of 0.3; from 4: 0.1
    np.testing.assert_allclose(seen, [1.0, 0.7, 0.4, 0.1, 0.1, 0.1], rtol=1e-6)


def test_momentum_adjustor_seed_schedule():
    """The seed YAML's 0.05 -> 0.95 with start 5, saturate 6."""
    algo = _algorithm(momentum=0.05)
    ext = MomentumAdjustor(final_momentum=0.95, start=5, saturate=6)
    seen = []
    for _ in range(8):
        ext.on_monitor(None, None, algo)
        seen.append(float(algo.learning_rule.momentum.get_value()))
    np.testing.assert_allclose(seen, [0.05] * 5 + [0.95] * 3, rtol=1e-6)


def test_momentum_adjustor_linear_ramp():
    algo = _algorithm(momentum=0.0)
    ext = MomentumAdjustor(final_momentum=0.8, start=1, saturate=5)
    seen = []
    for _ in range(6):
        ext.on_monitor(None, None, algo)
        seen.append(float(algo.learning_rule.momentum.get_value()))
    np.testing.assert_allclose(seen, [0.0, 0.2, 0.4, 0.6, 0.8, 0.8], rtol=1e-6)


def test_momentum_adjustor_needs_momentum_rule():
    algo = SimpleNamespace(learning_rate=sharedX(1.0), learning_rule=LearningRule())
    with pytest.raises(TypeError, match="needs the SGD learning_rule to be Momentum"):
        MomentumAdjustor(0.9, 1, 2).on_monitor(None, None, algo)


def test_float32_updates():
    p = sharedX(P0)
    with pytensor.config.change_flags(warn_float64="raise"):
        for rule in (LearningRule(), Momentum(0.5), RMSProp(), Adam()):
            updates = rule.get_updates(sharedX(LR), OrderedDict([(p, p * 2.0)]), {p: 0.3})
            assert all(v.dtype == "float32" for v in updates.values())


@pytest.mark.parametrize(
    "rule, per_param",
    [(LearningRule(), 0), (Momentum(0.5), 1), (RMSProp(), 1), (Adam(), 2)],
    ids=["sgd", "momentum", "rmsprop", "adam"],
)
def test_one_set_of_state_per_parameter_however_many_graphs(rule, per_param):
    """Two graphs built for the same parameters (one per batch size on JAX)
    update the same state variables, so they train as one optimiser."""
    p, q = sharedX(P0, name="p"), sharedX(A, name="q")
    lr = sharedX(LR)
    first = rule.get_updates(lr, OrderedDict([(p, p * 2.0), (q, q * 3.0)]))
    state = list(rule.state)
    second = rule.get_updates(lr, OrderedDict([(p, p * 5.0), (q, q * 7.0)]))
    expected = 2 * per_param + (1 if isinstance(rule, Adam) else 0)
    assert len(rule.state) == expected
    assert rule.state == state and all(a is b for a, b in zip(rule.state, state))
    assert set(first) == set(second)  # the same shared variables are updated
    assert len(rule.state_dict()["state"]) == expected


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "100"])
def test_sgd_refuses_a_batch_size_that_is_not_a_positive_whole_number(bad):
    with pytest.raises((ValueError, TypeError), match="batch_size"):
        SGD(learning_rate=0.1, batch_size=bad)


def test_sgd_takes_a_whole_float_batch_size_as_an_int():
    algorithm = SGD(learning_rate=0.1, batch_size=100.0)
    assert algorithm.batch_size == 100 and isinstance(algorithm.batch_size, int)


# -- one owner per hyper-parameter: SGD's base rate, the Momentum rule's init_momentum --


def f32(value) -> float:
    return float(np.float32(value))


def test_schedules_keep_only_their_count():
    algo = _algorithm(lr=1e-3, momentum=0.5)
    decay = ExponentialDecay(decay_factor=1.5, min_lr=0.0)
    linear = LinearDecayOverEpoch(start=2, saturate=4, decay_factor=0.1)
    adjustor = MomentumAdjustor(final_momentum=0.9, start=1, saturate=3)
    for _ in range(3):
        decay(algo)
        linear.on_monitor(None, None, algo)
        adjustor.on_monitor(None, None, algo)
    assert [s.state_dict() for s in (decay, linear, adjustor)] == [{"_count": 3}] * 3
    assert algo.base_learning_rate == f32(1e-3)
    assert algo.learning_rule.init_momentum == f32(0.5)


def test_exponential_decay_follows_the_algorithms_base_rate():
    """A changed learning rate scales the current rate at once and the schedule
    from then on, by new / old."""
    algo = _algorithm(lr=1e-3)
    decay = ExponentialDecay(decay_factor=1.5, min_lr=1e-6)
    for _ in range(3):
        decay(algo)
    changed = algo.change_hyperparameters(learning_rate=(1e-3, 3e-3))
    before = f32(f32(1e-3) / 1.5**3)
    assert changed == {"learning_rate": (before, before * (3e-3 / 1e-3))}
    assert float(algo.learning_rate.get_value()) == f32(before * 3)
    assert algo.base_learning_rate == f32(1e-3) * (3e-3 / 1e-3)
    seen = []
    for _ in range(2):
        decay(algo)
        seen.append(float(algo.learning_rate.get_value()))
    assert seen == [f32(f32(1e-3) * (3e-3 / 1e-3) / 1.5**t) for t in (4, 5)]


def test_linear_decay_follows_the_algorithms_base_rate():
    algo = _algorithm(lr=1.0)
    linear = LinearDecayOverEpoch(start=2, saturate=4, decay_factor=0.1)
    linear.on_monitor(None, None, algo)
    algo.change_hyperparameters(learning_rate=(1.0, 0.5))
    seen = []
    for _ in range(3):
        linear.on_monitor(None, None, algo)
        seen.append(float(algo.learning_rate.get_value()))
    np.testing.assert_allclose(seen, [0.35, 0.2, 0.05], rtol=1e-6)


def test_exponential_decay_past_the_float_range_stays_at_min_lr():
    algo = _algorithm(lr=1e-3)
    decay = ExponentialDecay(decay_factor=1.001, min_lr=1e-5)
    decay.load_state_dict({"_count": 10**7})  # 1.001 ** 10**7 overflows a float
    decay(algo)
    assert float(algo.learning_rate.get_value()) == f32(1e-5)


def test_restored_schedules_continue_exactly():
    """Saved and restored (SGD, schedule, adjustor), a run goes on as if never stopped."""

    def objects():
        algo = SGD(
            learning_rate=0.02,
            learning_rule=Momentum(0.3),
            update_callbacks=[ExponentialDecay(decay_factor=1.1, min_lr=0.0)],
        )
        return algo, MomentumAdjustor(final_momentum=0.9, start=2, saturate=6)

    def advance(algo, adjustor, steps):
        out = []
        for _ in range(steps):
            algo.update_callbacks[0](algo)
            adjustor.on_monitor(None, None, algo)
            momentum = float(algo.learning_rule.momentum.get_value())
            out.append((float(algo.learning_rate.get_value()), momentum))
        return out

    first, first_adjustor = objects()
    advance(first, first_adjustor, 3)
    first.change_hyperparameters(learning_rate=(0.02, 0.01), init_momentum=(0.3, 0.4))
    state, adjustor_state = first.state_dict(), first_adjustor.state_dict()
    second, second_adjustor = objects()
    second.load_state_dict(state)
    second_adjustor.load_state_dict(adjustor_state)
    assert second.base_learning_rate == first.base_learning_rate == f32(0.02) * 0.5
    assert second.learning_rule.init_momentum == 0.4
    assert advance(second, second_adjustor, 4) == advance(first, first_adjustor, 4)


def test_change_hyperparameters_checks_values_and_rules():
    algo = _algorithm(lr=0.1, momentum=0.5)
    assert algo.change_hyperparameters(init_momentum=(0.5, 0.7)) == {"momentum": (0.5, 0.7)}
    assert float(algo.learning_rule.momentum.get_value()) == f32(0.7)
    assert algo.learning_rule.init_momentum == 0.7
    adjustor = MomentumAdjustor(final_momentum=0.9, start=1, saturate=3)
    adjustor.on_monitor(None, None, algo)
    adjustor.on_monitor(None, None, algo)
    assert float(algo.learning_rule.momentum.get_value()) == f32(0.7 * 0.5 + 0.5 * 0.9)
    with pytest.raises(ValueError, match="init_momentum must be in \\[0, 1\\), got 1.5"):
        algo.change_hyperparameters(init_momentum=(0.5, 1.5))
    with pytest.raises(ValueError, match="learning_rate must be a positive number, got 0"):
        algo.change_hyperparameters(learning_rate=(0.1, 0))
    plain = SGD(learning_rate=0.1)
    assert plain.change_hyperparameters(init_momentum=(0.5, 0.6)) == {}
    assert plain.change_hyperparameters() == {}
