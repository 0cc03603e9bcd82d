"""Checkpoints written before the algorithm owned its base hyper-parameters.

Such checkpoints kept the learning rate the schedules decay from in the
schedules' own states (``ExponentialDecay._base_lr``,
``LinearDecayOverEpoch._init_lr``) and the momentum ``MomentumAdjustor``
moves from in its state (``_init_momentum``); ``--resume --force`` used to
edit them there. Now ``SGD.base_learning_rate`` and ``Momentum.init_momentum``
own these values and the schedules keep only their counts.
:func:`adopt_saved_bases` gives the owners the values such a checkpoint kept,
so that it resumes exactly as it would have.
"""

from __future__ import annotations

import math

from pylearn_vae.training_algorithms.learning_rule import Momentum

__all__ = ["adopt_saved_bases"]

#: Where the schedules of older checkpoints kept the learning rate they decay from.
LEARNING_RATE_KEYS = ("_base_lr", "_init_lr")
#: Where MomentumAdjustor kept the momentum it moves from.
MOMENTUM_KEYS = ("_init_momentum",)


def adopt_saved_bases(state: dict, algorithm) -> None:
    """Give ``algorithm`` (an ``SGD`` already restored from ``state``, the checkpoint's
    state tree) the base values that an older checkpoint kept in its schedules.

    A checkpoint that has ``base_learning_rate`` (and ``init_momentum`` in
    its learning rule's state) is of the current kind: nothing is changed.
    A schedule that had not run yet kept no value; the rate or momentum
    restored from the checkpoint then stands in, as it would have at the
    schedule's first call.
    """
    schedules = [
        *state["algorithm"].get("update_callbacks", {}).values(),
        *state.get("extensions", {}).values(),
    ]
    if "base_learning_rate" not in state["algorithm"]:
        saved = _first_saved(schedules, LEARNING_RATE_KEYS)
        if saved is not None:
            algorithm.base_learning_rate = saved
    rule = algorithm.learning_rule
    if isinstance(rule, Momentum) and "init_momentum" not in state["algorithm"]["learning_rule"]:
        saved = _first_saved(schedules, MOMENTUM_KEYS)
        if saved is not None:
            rule.init_momentum = saved


def _first_saved(states: list, keys: tuple[str, ...]) -> float | None:
    """The first finite number saved under one of ``keys`` in ``states``, or None."""
    for sub in states:
        for key in keys:
            value = sub.get(key) if isinstance(sub, dict) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                if math.isfinite(value):
                    return float(value)
    return None
