"""Keep the model that is best on a monitoring channel."""

from __future__ import annotations

import copy

from pylearn_vae import persistence
from pylearn_vae.train_extensions import TrainExtension
from pylearn_vae.utils.state import Stateful

__all__ = ["MonitorBasedSaveBest"]


class MonitorBasedSaveBest(TrainExtension, Stateful):
    """Save the model whenever ``channel_name`` reaches a new best value.

    Parameters
    ----------
    channel_name : str
        Monitor channel to watch, e.g. ``valid_objective``.
    save_path : str, optional
        Where to save the best model (atomically).
    store_best_model : bool
        Also keep a copy in ``self.best_model``.
    start_epoch : int
        Ignore epochs before this one.
    higher_is_better : bool
        Whether larger values are better.
    """

    _state_attributes = ("best_cost", "best_epoch")

    def __init__(
        self,
        channel_name: str,
        save_path: str | None = None,
        store_best_model: bool = False,
        start_epoch: int = 0,
        higher_is_better: bool = False,
        tag_key=None,
    ) -> None:
        if tag_key is not None:
            raise ValueError("MonitorBasedSaveBest: tag_key is not supported by pylearn_vae")
        if save_path is not None:
            persistence.check_model_path(save_path, "MonitorBasedSaveBest: save_path")
        self.channel_name = channel_name
        self.save_path = save_path
        self.store_best_model = bool(store_best_model)
        self.start_epoch = int(start_epoch)
        self.higher_is_better = bool(higher_is_better)
        self.best_cost = float("-inf") if self.higher_is_better else float("inf")
        self.best_epoch = None
        self.best_model = None

    def setup(self, model, dataset, algorithm) -> None:
        if self.channel_name not in model.monitor.channels:
            raise ValueError(
                f"MonitorBasedSaveBest: no monitor channel named {self.channel_name!r}; available: "
                + ", ".join(sorted(model.monitor.channels))
            )

    def on_monitor(self, model, dataset, algorithm) -> None:
        monitor = model.monitor
        if monitor.get_epochs_seen() < self.start_epoch:
            return
        value = monitor.channel_value(self.channel_name)
        better = value > self.best_cost if self.higher_is_better else value < self.best_cost
        if not better:
            return
        self.best_cost = value
        self.best_epoch = monitor.get_epochs_seen()
        if self.store_best_model:
            self.best_model = copy.deepcopy(model)
        if self.save_path:
            persistence.save(self.save_path, model)
