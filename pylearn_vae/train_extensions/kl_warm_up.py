"""KL warm-up: the weight of the KL term raised from a start value to 1."""

from __future__ import annotations

import numpy as np

from pylearn_vae.train_extensions import TrainExtension
from pylearn_vae.utils import check_positive_int
from pylearn_vae.utils.state import Stateful

__all__ = ["KLWarmUp"]


class KLWarmUp(TrainExtension, Stateful):
    r"""Raise the KL weight :math:`\beta` of the training cost linearly to 1 (an addition).

    The cost must be a ``VAECriterion`` given a ``kl_weight`` (its starting
    value, usually 0): the first training epoch runs with that weight, and
    each epoch adds ``(1 - start) / epochs`` until the weight is 1 after
    ``epochs`` epochs. The count of epochs is saved in checkpoints, so a
    resumed run continues the ramp. Only the training objective is
    weighted; the monitored ``objective`` stays the negative lower bound.
    """

    _state_attributes = ("_count",)

    def __init__(self, epochs: int) -> None:
        self.epochs = check_positive_int(epochs, "KLWarmUp epochs")
        self._count = 0  # monitoring steps seen (the first comes before training)
        self._weight = None
        self._start = None

    def setup(self, model, dataset, algorithm) -> None:
        weight = getattr(getattr(algorithm, "cost", None), "kl_weight", None)
        if weight is None:
            raise ValueError(
                "KLWarmUp needs a cost with a KL weight: give the algorithm's VAECriterion "
                "a starting weight, for example `cost: !obj:pylearn_vae.costs.vae.VAECriterion "
                "{num_samples: 1, kl_weight: 0.0}`"
            )
        self._weight = weight
        self._start = float(weight.get_value())
        self._apply()

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._apply()

    def on_monitor(self, model, dataset, algorithm) -> None:
        self._count += 1
        self._apply()

    def current_weight(self) -> float:
        """The weight for the coming epoch."""
        done = max(self._count - 1, 0)  # epochs trained so far
        return min(1.0, self._start + (1.0 - self._start) * done / self.epochs)

    def _apply(self) -> None:
        if self._weight is not None:
            self._weight.set_value(np.asarray(self.current_weight(), dtype=self._weight.dtype))
