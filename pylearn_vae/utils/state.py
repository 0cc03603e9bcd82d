"""Training state that checkpoints save and restore.

Objects that carry state across epochs (schedules, criteria, extensions,
learning rules) list the attributes that matter in ``_state_attributes``;
:class:`Stateful` turns them into a plain dict of numbers, strings, None and
NumPy arrays, and back. Shared variables are saved by value.
"""

from __future__ import annotations

import numpy as np
from pytensor.compile.sharedvalue import SharedVariable

__all__ = ["Stateful", "random_state_to_dict", "random_state_from_dict"]


def assign(variable, value, what: str, borrow: bool = False) -> None:
    """Set shared ``variable`` to ``value`` cast to its dtype, if the shapes agree.

    ``what`` names the variable in the ``ValueError`` raised otherwise.
    """
    current = variable.get_value(borrow=True)
    value = np.asarray(value)
    if value.shape != current.shape:
        raise ValueError(f"{what} has shape {value.shape}, expected {current.shape}")
    variable.set_value(value.astype(current.dtype, copy=False), borrow=borrow)


class Stateful:
    """Mixin: ``state_dict()`` / ``load_state_dict()`` from ``_state_attributes``."""

    _state_attributes: tuple[str, ...] = ()

    def state_dict(self) -> dict:
        state = {}
        for name in self._state_attributes:
            value = getattr(self, name)
            if isinstance(value, SharedVariable):
                value = np.array(value.get_value())
            elif isinstance(value, Stateful):
                value = value.state_dict()
            elif isinstance(value, list) and value and all(isinstance(v, Stateful) for v in value):
                value = {str(i): v.state_dict() for i, v in enumerate(value)}
            state[name] = value
        return state

    def load_state_dict(self, state: dict) -> None:
        for name in self._state_attributes:
            if name not in state:
                raise KeyError(f"{type(self).__name__}: checkpoint has no state {name!r}")
            current = getattr(self, name)
            value = state[name]
            if isinstance(current, SharedVariable):
                assign(current, value, f"{type(self).__name__}.{name}")
            elif isinstance(current, Stateful):
                current.load_state_dict(value)
            elif (
                isinstance(current, list)
                and current
                and all(isinstance(v, Stateful) for v in current)
            ):
                for i, item in enumerate(current):
                    item.load_state_dict(value[str(i)])
            else:
                setattr(self, name, value)


def random_state_to_dict(rng: np.random.RandomState) -> dict:
    kind, keys, pos, has_gauss, cached = rng.get_state()
    return {
        "kind": kind,
        "keys": np.asarray(keys),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def random_state_from_dict(rng: np.random.RandomState, state: dict) -> None:
    rng.set_state(
        (
            state["kind"],
            np.asarray(state["keys"], dtype=np.uint32),
            int(state["pos"]),
            int(state["has_gauss"]),
            float(state["cached"]),
        )
    )
