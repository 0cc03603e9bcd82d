"""Polyak averaging: the running mean of the parameters over the training steps.

Pylearn2's ``PolyakAveraging`` (in ``pylearn2.training_algorithms.sgd``)
kept the mean beside the model but let the monitor see the trained
parameters; it said itself that a cleaner way to monitor and save the
averaged copy was missing. Here, once averaging has started, the model
holds the averages whenever it is looked at after an epoch (the monitor,
the extensions, the saved models) and the trained parameters whenever it
trains (see ``TrainExtension.shown_values``); checkpoints keep both.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor

from pylearn_vae import persistence
from pylearn_vae.compile import function
from pylearn_vae.train_extensions import TrainExtension
from pylearn_vae.utils import sharedX
from pylearn_vae.utils.state import Stateful

__all__ = ["PolyakAveraging"]


def _whole(value, what: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise ValueError(f"PolyakAveraging: {what} must be an integer >= {least}, got {value!r}")
    return int(value)


class PolyakAveraging(TrainExtension, Stateful):
    """Average the parameters over every training step after epoch ``start``.

    Parameters
    ----------
    start : int
        The epoch after which averaging starts (0: from the first step).
        From then on, after every minibatch, each parameter's mean becomes
        ``mean - (mean - param) / t`` and ``t`` grows by one (Pylearn2's
        arithmetic running mean; the first step after ``start`` sets the mean
        to that step's parameters).
    save_path : str, optional
        Also save the averaged model here every ``save_freq`` epochs after
        ``start`` (as Pylearn2 did). The monitor, ``MonitorBasedSaveBest``,
        ``EpochSnapshots`` and ``Train``'s own ``save_path`` see the averages
        anyway.
    save_freq : int
        Save after the epochs that are multiples of ``save_freq``.

    Training goes on from the trained parameters; only what is looked at
    between epochs is the average (so early stopping judges the averaged
    model). The means, their count and whether averaging started are saved
    in checkpoints, so a resumed run continues the same average bit for bit.
    A run resumed with this extension newly added to its YAML (``--resume
    --force``; new extensions go at the end of the list) starts averaging at
    the end of the next epoch if ``start`` has passed.
    """

    def __init__(self, start: int, save_path: str | None = None, save_freq: int = 1) -> None:
        self.start = _whole(start, "start", 0)
        self.save_freq = _whole(save_freq, "save_freq", 1)
        if save_path is not None:
            persistence.check_model_path(save_path, "PolyakAveraging: save_path")
        self.save_path = save_path
        self._params: list = []
        self._means: list = []
        self._t = None
        self._started = False

    # -- wiring ---------------------------------------------------------------
    def setup(self, model, dataset, algorithm) -> None:
        callbacks = getattr(algorithm, "update_callbacks", None)
        if callbacks is None:
            raise TypeError(
                "PolyakAveraging needs a training algorithm with update_callbacks (SGD), got "
                f"{type(algorithm).__name__}"
            )
        if any(isinstance(getattr(c, "__self__", None), PolyakAveraging) for c in callbacks):
            raise ValueError(
                "the run has two PolyakAveraging extensions; keep one (each would show its "
                "own averages in the same parameters)"
            )
        self._params = list(model.get_params())
        self._means = [  # (each in its parameter's own dtype and shape)
            pytensor.shared(
                np.array(p.get_value()), name=f"{p.name}_polyak_mean", shape=p.type.shape
            )
            for p in self._params
        ]
        self._t = sharedX(1.0, name="polyak_t")
        t = self._t
        updates = OrderedDict(
            (m, m - (m - p) / t.astype(m.dtype))
            for p, m in zip(self._params, self._means, strict=True)
        )
        updates[t] = t + 1.0
        # compiled now (not inside an epoch whose pace is measured), in the algorithm's mode
        self._average = function(
            [], [], updates=updates, mode=getattr(algorithm, "theano_function_mode", None)
        )
        callbacks.append(self._after_step)

    def _after_step(self, algorithm) -> None:
        if self._started:
            self._average()

    # -- what the monitor and the extensions see --------------------------------
    def shown_values(self) -> dict | None:
        if not self._started:
            return None
        return {p: m.get_value() for p, m in zip(self._params, self._means, strict=True)}

    def on_monitor(self, model, dataset, algorithm) -> None:
        epoch = model.monitor.get_epochs_seen()
        if not self._started:
            if epoch >= self.start:
                self._begin()
            return
        if self.save_path and epoch % self.save_freq == 0:  # (Pylearn2's count of calls)
            persistence.save(self.save_path, model)  # (the averages are shown now)

    def _begin(self) -> None:
        for p, m in zip(self._params, self._means, strict=True):
            m.set_value(p.get_value())
        self._t.set_value(np.asarray(1.0, dtype=self._t.dtype))
        self._started = True

    # -- checkpoints ---------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "started": int(self._started),
            "t": np.array(self._t.get_value()),
            "means": {
                p.name: np.array(m.get_value())
                for p, m in zip(self._params, self._means, strict=True)
            },
        }

    def load_state_dict(self, state: dict) -> None:
        started = _checked_started(state["started"])
        t = _checked_steps(state["t"])
        means = state["means"]
        _check_names(means, [p.name for p in self._params])
        values = []
        for p, m in zip(self._params, self._means, strict=True):
            value = np.asarray(means[p.name])
            current = m.get_value(borrow=True)
            if value.shape != current.shape or value.dtype != current.dtype:
                raise ValueError(
                    f"PolyakAveraging: the saved mean of {p.name!r} is {value.dtype}{list(value.shape)}, "
                    f"expected {current.dtype}{list(current.shape)}"
                )
            if not np.isfinite(value).all():
                raise ValueError(f"PolyakAveraging: the saved mean of {p.name!r} is not finite")
            values.append(value)
        for m, value in zip(self._means, values, strict=True):
            m.set_value(value)
        self._t.set_value(t.astype(self._t.dtype))
        self._started = bool(started)


#: The most steps an average may count (the running mean's step is 1/t).
MAX_STEPS = 1 << 40


def _checked_started(value) -> bool:
    started = _scalar(value)
    if (
        isinstance(started, bool)
        or not isinstance(started, (int, np.integer))
        or started not in (0, 1)
    ):
        raise ValueError(f"PolyakAveraging: 'started' must be 0 or 1, got {_brief(started)}")
    return bool(started)


def _checked_steps(value) -> np.ndarray:
    """The count of steps averaged: a whole number the float32 mean can still use."""
    t = _scalar(value)
    if (
        isinstance(t, bool)
        or not isinstance(t, (int, float, np.integer, np.floating))
        or not 1 <= t <= MAX_STEPS
        or t != int(t)
    ):
        raise ValueError(
            f"PolyakAveraging: 't' (steps averaged) must be a whole number from 1 to "
            f"{MAX_STEPS}, got {_brief(t)}"
        )
    return np.asarray(t)


def _check_names(means, names: list) -> None:
    """The saved means must be for exactly this model's parameters."""
    if not isinstance(means, dict):
        raise ValueError(f"PolyakAveraging: 'means' must be a group, got {_brief(means)}")
    missing = sorted(set(names) - set(means))
    unexpected = sorted(map(str, set(means) - set(names)))
    if missing or unexpected:
        parts = [f"missing: {', '.join(missing)}"] if missing else []
        parts += [f"not in this model: {', '.join(unexpected)}"] if unexpected else []
        raise ValueError(
            f"PolyakAveraging: the saved means are for other parameters ({'; '.join(parts)})"
        )


def _scalar(value):
    """A 0-d array (as HDF5 stores a number) as its Python value; else ``value``."""
    if isinstance(value, np.ndarray) and value.shape == ():
        return value.item()
    return value


def _brief(value) -> str:
    text = repr(value) if isinstance(value, (int, float, str, bool)) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."
