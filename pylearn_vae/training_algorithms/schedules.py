"""Learning-rate schedules: per-minibatch and per-epoch.

A schedule owns only its count of calls. The rate it sets is a function of
that count and of the algorithm's ``base_learning_rate`` (the YAML's
``learning_rate``; see :meth:`SGD.change_hyperparameters
<pylearn_vae.training_algorithms.sgd.SGD.change_hyperparameters>`), so a
checkpoint restores a schedule by its count alone.
"""

from __future__ import annotations

from pylearn_vae.train_extensions import TrainExtension
from pylearn_vae.utils.state import Stateful

__all__ = ["ExponentialDecay", "LinearDecayOverEpoch", "exponential_decay_lr", "linear_decay_lr"]


def exponential_decay_lr(base_lr: float, decay_factor: float, step: int, min_lr: float) -> float:
    r"""Learning rate after ``step`` updates: :math:`\max(\eta_0 / d^t, \eta_{min})`.

    >>> round(exponential_decay_lr(1.0, 2.0, 3, 0.0), 6)
    0.125
    >>> exponential_decay_lr(1.0, 2.0, 10**6, 1e-5)  # d**t beyond the float range
    1e-05
    """
    try:
        return max(base_lr / decay_factor**step, min_lr)
    except OverflowError:  # long past min_lr (Pylearn2 stopped computing there too)
        return min_lr


def linear_decay_lr(
    init_lr: float, count: int, start: int, saturate: int, decay_factor: float
) -> float:
    """Learning rate after ``count`` monitoring steps of a linear decay.

    Constant before ``start``; from ``start`` to ``saturate`` it falls
    linearly to ``init_lr * decay_factor`` and stays there.

    >>> linear_decay_lr(1.0, 1, start=2, saturate=4, decay_factor=0.1)
    1.0
    >>> round(linear_decay_lr(1.0, 3, start=2, saturate=4, decay_factor=0.1), 6)
    0.4
    """
    if count < start:
        return init_lr
    if count >= saturate:
        return init_lr * decay_factor
    step = (init_lr - init_lr * decay_factor) / (saturate - start + 1)
    return init_lr - step * (count - start + 1)


class ExponentialDecay(Stateful):
    r"""Divide the learning rate by ``decay_factor`` after every minibatch.

    :math:`\eta_t = \max(\eta_0 / d^t, \eta_{min})` after the :math:`t`-th
    minibatch, where :math:`\eta_0` is the algorithm's ``base_learning_rate``
    (an ``update_callbacks`` entry of ``SGD``).
    """

    _state_attributes = ("_count",)

    def __init__(self, decay_factor: float, min_lr: float) -> None:
        self.decay_factor = float(decay_factor)
        self.min_lr = float(min_lr)
        if self.decay_factor < 1.0:
            raise ValueError(f"ExponentialDecay: decay_factor must be >= 1, got {decay_factor}")
        if self.min_lr < 0.0:
            raise ValueError(f"ExponentialDecay: min_lr must be >= 0, got {min_lr}")
        self._count = 0

    def __call__(self, algorithm) -> None:
        self._count += 1
        base = algorithm.base_learning_rate
        algorithm.set_learning_rate(
            exponential_decay_lr(base, self.decay_factor, self._count, self.min_lr)
        )


class LinearDecayOverEpoch(TrainExtension, Stateful):
    """Decay the learning rate linearly over epochs (a Train extension).

    Called after every monitoring step (the first one is before any
    training), it sets the rate from the algorithm's ``base_learning_rate``
    and its count of calls (:func:`linear_decay_lr`).

    Parameters
    ----------
    start : int
        Monitoring step at which decay starts.
    saturate : int
        Step from which the rate stays at ``decay_factor`` times its start value.
    decay_factor : float
        Final learning rate as a fraction of the initial one, in (0, 1].
    """

    _state_attributes = ("_count",)

    def __init__(self, start: int, saturate: int, decay_factor: float) -> None:
        self.start = int(start)
        self.saturate = int(saturate)
        self.decay_factor = float(decay_factor)
        if self.start < 1 or self.saturate < self.start:
            raise ValueError(
                f"LinearDecayOverEpoch: need 1 <= start <= saturate, got start={start}, saturate={saturate}"
            )
        if not 0.0 < self.decay_factor <= 1.0:
            raise ValueError(
                f"LinearDecayOverEpoch: decay_factor must be in (0, 1], got {decay_factor}"
            )
        self._count = 0

    def on_monitor(self, model, dataset, algorithm) -> None:
        self._count += 1
        base = algorithm.base_learning_rate
        algorithm.set_learning_rate(
            linear_decay_lr(base, self._count, self.start, self.saturate, self.decay_factor)
        )
