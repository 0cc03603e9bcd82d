"""Checkpoints written before SGD and Momentum owned their base values (in-process, no graph).

Such a checkpoint's state kept the learning rate the schedules decay from in
``ExponentialDecay._base_lr`` / ``LinearDecayOverEpoch._init_lr`` and the
momentum the adjustor moves from in ``MomentumAdjustor._init_momentum``.
"""

import numpy as np
import pytest

from pylearn_vae.training_algorithms.learning_rule import Momentum, MomentumAdjustor
from pylearn_vae.training_algorithms.legacy_state import adopt_saved_bases
from pylearn_vae.training_algorithms.schedules import ExponentialDecay, LinearDecayOverEpoch
from pylearn_vae.training_algorithms.sgd import SGD


def f32(value) -> float:
    return float(np.float32(value))


def run_objects():
    """An SGD with a per-minibatch schedule, and two extensions (as Train holds them)."""
    algorithm = SGD(
        learning_rate=0.05,
        learning_rule=Momentum(0.5),
        update_callbacks=[ExponentialDecay(decay_factor=1.25, min_lr=0.0)],
    )
    extensions = [
        MomentumAdjustor(final_momentum=0.9, start=1, saturate=5),
        LinearDecayOverEpoch(start=10, saturate=20, decay_factor=0.5),
    ]
    return algorithm, extensions


def old_state(base_lr, init_lr, init_momentum) -> dict:
    """The state tree the old code wrote after 3 minibatches and 2 monitoring steps."""
    algorithm, extensions = run_objects()
    for _ in range(3):
        algorithm.update_callbacks[0](algorithm)
    momentum = []
    for _ in range(2):
        extensions[0].on_monitor(None, None, algorithm)
        momentum.append(float(algorithm.learning_rule.momentum.get_value()))
    state = {
        "algorithm": algorithm.state_dict(),
        "extensions": {str(i): e.state_dict() for i, e in enumerate(extensions)},
    }
    del state["algorithm"]["base_learning_rate"]
    del state["algorithm"]["learning_rule"]["init_momentum"]
    state["algorithm"]["update_callbacks"]["0"]["_base_lr"] = base_lr
    state["extensions"]["0"].update(_initialized=init_momentum is not None)
    state["extensions"]["0"]["_init_momentum"] = init_momentum
    state["extensions"]["1"]["_init_lr"] = init_lr
    return state


def restored(state):
    algorithm, extensions = run_objects()
    algorithm.load_state_dict(state["algorithm"])
    for key, sub in state["extensions"].items():
        extensions[int(key)].load_state_dict(sub)
    adopt_saved_bases(state, algorithm)
    return algorithm, extensions


@pytest.mark.parametrize(
    "base_lr, init_lr", [(0.08, 0.08), (0.08, None), (None, 0.08)], ids=["both", "exp", "linear"]
)
def test_the_bases_an_old_checkpoint_kept_go_to_their_owners(base_lr, init_lr):
    # Bases other than the YAML's (0.05, 0.5): what a forced resume left.
    algorithm, extensions = restored(old_state(base_lr, init_lr, 0.6))
    assert algorithm.base_learning_rate == 0.08
    assert algorithm.learning_rule.init_momentum == 0.6
    algorithm.update_callbacks[0](algorithm)
    assert float(algorithm.learning_rate.get_value()) == f32(0.08 / 1.25**4)
    extensions[0].on_monitor(None, None, algorithm)  # third call: alpha 2/4
    assert float(algorithm.learning_rule.momentum.get_value()) == f32(0.6 * 0.5 + 0.5 * 0.9)


def test_schedules_that_had_not_run_kept_nothing_and_the_current_values_stand_in():
    state = old_state(None, None, None)
    algorithm, _ = restored(state)
    current = f32(f32(0.05) / 1.25**3)
    assert algorithm.base_learning_rate == current
    assert algorithm.learning_rule.init_momentum == float(
        np.asarray(state["algorithm"]["learning_rule"]["momentum"])
    )


def test_a_current_checkpoint_is_left_alone():
    algorithm, extensions = run_objects()
    algorithm.change_hyperparameters(learning_rate=(0.05, 0.1), init_momentum=(0.5, 0.7))
    state = {
        "algorithm": algorithm.state_dict(),
        "extensions": {str(i): e.state_dict() for i, e in enumerate(extensions)},
    }
    state["extensions"]["1"]["_init_lr"] = 123.0  # not a key of the current format
    again, _ = restored(state)
    assert again.base_learning_rate == f32(0.05) * 2.0
    assert again.learning_rule.init_momentum == 0.7
