"""Learning rules: how gradients become parameter updates (YAML-facing classes).

The maths lives in :mod:`pylearn_vae.training_algorithms.updates`; the classes
here own the rule's configuration and its shared state (momentum, velocities)
so that schedules and checkpoints can reach them.
"""

from __future__ import annotations

import numpy as np

from pylearn_vae.train_extensions import TrainExtension
from pylearn_vae.training_algorithms.updates import (
    adam_updates,
    momentum_updates,
    new_state,
    rmsprop_updates,
    sgd_updates,
)
from pylearn_vae.utils import sharedX
from pylearn_vae.utils.state import Stateful, assign

__all__ = ["LearningRule", "Momentum", "MomentumAdjustor", "RMSProp", "Adam"]


class LearningRule(Stateful):
    """Base class: plain gradient descent.

    ``self.state`` lists the shared variables the rule created (velocities,
    moment estimates), in creation order; checkpoints save them in that
    order. There is one set per trainable parameter however many functions
    are compiled (SGD compiles one per batch size on the JAX backend), so
    every compiled step moves the same velocities.
    """

    def __init__(self) -> None:
        self.state: list = []
        self._slots: dict = {}

    def state_variable(self, param, suffix: str):
        """The rule's state variable for ``param`` and ``suffix``, made at first use."""
        key = (param, suffix)
        if key not in self._slots:
            self._slots[key] = new_state(param, suffix)
            self.state.append(self._slots[key])
        return self._slots[key]

    def state_dict(self) -> dict:
        rval = super().state_dict()
        rval["state"] = {str(i): v.get_value() for i, v in enumerate(self.state)}
        return rval

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        saved = state["state"]
        if len(saved) != len(self.state):
            raise ValueError(
                f"{type(self).__name__}: checkpoint has {len(saved)} state variables, expected {len(self.state)}"
            )
        for i, var in enumerate(self.state):
            assign(var, saved[str(i)], f"{type(self).__name__}: state {var.name!r}")

    def get_updates(self, learning_rate, grads, lr_scalers=None):
        """Return an ordered mapping ``shared variable -> new value``."""
        updates, _ = sgd_updates(grads, learning_rate, lr_scalers)
        return updates

    def monitoring_values(self) -> dict:
        """Scalar values to report with the monitor (name -> float)."""
        return {}

    def change_init_momentum(self, value: float) -> tuple[float, float] | None:
        """Start momentum again from ``value`` (a changed ``init_momentum``):
        ``(momentum before, after)``, or None for a rule without momentum."""
        return None


def _check_fraction(name: str, value, owner: str) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{owner}: {name} must be in [0, 1), got {value}")
    return value


class Momentum(LearningRule):
    r"""Momentum: :math:`v \leftarrow \mu v - \eta g,\ p \leftarrow p + v`.

    ``momentum`` is the shared variable the compiled step reads;
    ``init_momentum`` (a float, saved in checkpoints) is where a
    ``MomentumAdjustor`` moves it from.

    Parameters
    ----------
    init_momentum : float
        Initial :math:`\mu` in [0, 1); kept as float32 holds it.
    nesterov_momentum : bool
        Use Nesterov's variant.
    """

    _state_attributes = ("momentum", "init_momentum")

    def __init__(self, init_momentum: float, nesterov_momentum: bool = False) -> None:
        super().__init__()
        value = _check_fraction("init_momentum", init_momentum, "Momentum")
        self.momentum = sharedX(value, name="momentum")
        # The adjustor computes from the value the first step used.
        self.init_momentum = float(self.momentum.get_value())
        self.nesterov_momentum = bool(nesterov_momentum)

    def load_state_dict(self, state: dict) -> None:
        if "init_momentum" not in state:
            # Written before the rule kept its base: the MomentumAdjustor had
            # it (see training_algorithms.legacy_state), or, if none had run
            # yet, it would have taken the momentum it found.
            state = {**state, "init_momentum": float(np.asarray(state["momentum"]))}
        super().load_state_dict(state)
        self.init_momentum = float(self.init_momentum)  # a damaged value fails here

    def get_updates(self, learning_rate, grads, lr_scalers=None):
        updates, _ = momentum_updates(
            grads,
            learning_rate,
            self.momentum,
            lr_scalers,
            nesterov=self.nesterov_momentum,
            state_variable=self.state_variable,
        )
        return updates

    def monitoring_values(self) -> dict:
        return {"momentum": float(self.momentum.get_value())}

    def change_init_momentum(self, value: float) -> tuple[float, float]:
        value = _check_fraction("init_momentum", value, "Momentum")
        before = float(self.momentum.get_value())
        self.momentum.set_value(np.asarray(value, dtype=self.momentum.dtype))
        self.init_momentum = value
        return before, value


class MomentumAdjustor(TrainExtension, Stateful):
    """Move momentum linearly to ``final_momentum`` between epochs ``start`` and ``saturate``.

    Called after every monitoring step (the first one is before any
    training), like Pylearn2's: with ``start=5, saturate=6`` the momentum is
    the initial one up to the 5th call and the final one from the 6th on.
    The initial one is the rule's ``init_momentum``; the adjustor owns only
    its count of calls.
    """

    _state_attributes = ("_count",)

    def __init__(self, final_momentum: float, start: int, saturate: int) -> None:
        self.final_momentum = _check_fraction("final_momentum", final_momentum, "MomentumAdjustor")
        self.start = int(start)
        self.saturate = int(saturate)
        if self.saturate < self.start:
            raise ValueError(f"MomentumAdjustor: saturate ({saturate}) must be >= start ({start})")
        self._count = 0

    def on_monitor(self, model, dataset, algorithm) -> None:
        rule = getattr(algorithm, "learning_rule", None)
        if not isinstance(rule, Momentum):
            raise TypeError(
                "MomentumAdjustor needs the SGD learning_rule to be Momentum, got "
                f"{type(rule).__name__}"
            )
        self._count += 1
        rule.momentum.set_value(self.current_momentum(rule.init_momentum))

    def current_momentum(self, init_momentum: float) -> np.ndarray:
        """The momentum the schedule wants now, starting from ``init_momentum``."""
        width = self.saturate - self.start
        if width == 0:
            value = self.final_momentum if self._count >= self.start else init_momentum
        else:
            alpha = min(max((self._count - self.start) / width, 0.0), 1.0)
            value = init_momentum * (1.0 - alpha) + alpha * self.final_momentum
        return np.asarray(value, dtype=np.float32)


class RMSProp(LearningRule):
    """RMSProp with running mean-square decay ``decay``."""

    def __init__(self, decay: float = 0.9, max_scaling: float = 1e5) -> None:
        super().__init__()
        self.decay = _check_fraction("decay", decay, "RMSProp")
        if max_scaling <= 0:
            raise ValueError(f"RMSProp: max_scaling must be > 0, got {max_scaling}")
        self.max_scaling = float(max_scaling)

    def get_updates(self, learning_rate, grads, lr_scalers=None):
        updates, _ = rmsprop_updates(
            grads,
            learning_rate,
            self.decay,
            self.max_scaling,
            lr_scalers,
            state_variable=self.state_variable,
        )
        return updates


class Adam(LearningRule):
    """Adam with moment decays ``beta1``, ``beta2`` and stabiliser ``epsilon``."""

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8) -> None:
        super().__init__()
        self.beta1 = _check_fraction("beta1", beta1, "Adam")
        self.beta2 = _check_fraction("beta2", beta2, "Adam")
        self.epsilon = float(epsilon)

    def get_updates(self, learning_rate, grads, lr_scalers=None):
        updates, _ = adam_updates(
            grads,
            learning_rate,
            self.beta1,
            self.beta2,
            self.epsilon,
            lr_scalers,
            state_variable=self.state_variable,
        )
        return updates
