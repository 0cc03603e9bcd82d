"""``Train``: the main loop tying a data set, a model and an algorithm together."""

from __future__ import annotations

import sys
import time

from pylearn_vae.train_extensions import TrainExtension
from pylearn_vae.utils import serial

__all__ = ["Train"]


class Train:
    """Train ``model`` on ``dataset`` with ``algorithm``, monitoring every epoch.

    Parameters
    ----------
    dataset : Dataset
        Training data.
    model : Model
        The model to train.
    algorithm : SGD
        The training algorithm (required: models here have no ``train_all``).
    save_path : str, optional
        Where to save the model (every ``save_freq`` epochs and at the end).
    save_freq : int
        Save every this many epochs (0: only at the end).
    extensions : list of TrainExtension, optional
        Hooks called after every monitoring step.
    allow_overwrite : bool
        If false, refuse to start when ``save_path`` already exists.
    """

    def __init__(
        self,
        dataset,
        model,
        algorithm=None,
        save_path: str | None = None,
        save_freq: int = 0,
        extensions=None,
        allow_overwrite: bool = True,
    ) -> None:
        if algorithm is None:
            raise ValueError(
                "Train needs an algorithm (e.g. !obj:pylearn_vae.training_algorithms.sgd.SGD)"
            )
        if int(save_freq) < 0:
            raise ValueError(f"Train: save_freq must be >= 0, got {save_freq}")
        for extension in extensions or []:
            if not isinstance(extension, TrainExtension):
                raise TypeError(
                    f"Train: extensions must be TrainExtension objects, got {type(extension).__name__}"
                )
        self.dataset = dataset
        self.model = model
        self.algorithm = algorithm
        self.save_path = save_path
        self.save_freq = int(save_freq)
        self.extensions = list(extensions or [])
        self.allow_overwrite = bool(allow_overwrite)
        self.quiet = False
        self.stream = sys.stdout

    def setup(self) -> None:
        if self.save_path and not self.allow_overwrite:
            from pathlib import Path

            if Path(self.save_path).exists():
                raise FileExistsError(f"{self.save_path} exists and allow_overwrite is false")
        self.algorithm.setup(model=self.model, dataset=self.dataset)
        for extension in self.extensions:
            extension.setup(self.model, self.dataset, self.algorithm)

    def run_callbacks_and_monitoring(self) -> None:
        self.model.monitor()
        if not self.quiet:
            self.model.monitor.print_report(self.stream)
        for extension in self.extensions:
            extension.on_monitor(self.model, self.dataset, self.algorithm)

    def save(self) -> None:
        if not self.save_path:
            return
        for extension in self.extensions:
            extension.on_save(self.model, self.dataset, self.algorithm)
        serial.save(self.save_path, self.model)

    def main_loop(self) -> None:
        """Monitor, then train epoch after epoch until the termination criterion says stop."""
        self.setup()
        self.run_callbacks_and_monitoring()
        while self.algorithm.continue_learning(self.model):
            start = time.time()
            self.algorithm.train(dataset=self.dataset)
            self.model.monitor.report_epoch(time.time() - start)
            self.run_callbacks_and_monitoring()
            epochs = self.model.monitor.get_epochs_seen()
            if self.save_freq and epochs % self.save_freq == 0:
                self.save()
        self.save()
