"""``Train``: the main loop tying a data set, a model and an algorithm together."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

import numpy as np

from pylearn_vae import numerics, persistence
from pylearn_vae.train_extensions import TrainExtension
from pylearn_vae.training_algorithms.legacy_state import adopt_saved_bases
from pylearn_vae.training_algorithms.sgd import NumericalError, StopRequested
from pylearn_vae.utils.files import check_path_name

__all__ = ["Train"]

logger = logging.getLogger(__name__)


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
        if save_path is not None:
            check_path_name(save_path, "Train: save_path")
        for extension in extensions or []:
            if not isinstance(extension, TrainExtension):
                raise TypeError(
                    f"Train: extensions must be TrainExtension objects, got {type(extension).__name__}"
                )
        self.dataset = dataset
        self.model = model
        dataset_yaml_src = getattr(dataset, "yaml_src", None)
        if dataset_yaml_src is not None:
            model.dataset_yaml_src = dataset_yaml_src
        else:
            logger.warning(
                "the training set was not built from YAML, so the model will not record "
                "which data it was trained on (model.dataset_yaml_src stays unset)"
            )
        self.algorithm = algorithm
        self.save_path = save_path
        self.save_freq = int(save_freq)
        self.extensions = list(extensions or [])
        self.allow_overwrite = bool(allow_overwrite)
        # The run settings below are the job's (pylearn_vae.job.TrainingJob sets them).
        self.quiet = False
        #: Where the checkpoint is written (None: no checkpoints).
        self.checkpoint_path = None
        self.checkpoint_every = 1
        #: The YAML text the run was built from (stored in checkpoints).
        self.config_text: str | None = None
        #: Functions called as ``callback(train)`` at the end of every epoch
        #: (and after the monitoring pass before training), once that epoch's
        #: checkpoint is on disk: a sweep reports to Ray Tune from here.
        self.epoch_callbacks: list = []
        #: True once the termination criterion ended the run and the final
        #: model and checkpoint are written (the extensions are closed after).
        self.finished = False
        #: True once this session wrote a checkpoint.
        self.checkpointed = False
        #: Whether the training loop has begun (before: set-up and compiling,
        #: and a fresh run's first monitoring).
        self.training_started = False
        self._resumed = False

    def setup(self) -> None:
        if self.save_path and not self.allow_overwrite:
            if Path(self.save_path).exists():
                raise FileExistsError(f"{self.save_path} exists and allow_overwrite is false")
        for extension in self.extensions:  # (before anything compiles)
            extension.use_train(self)
        self.algorithm.setup(model=self.model, dataset=self.dataset)
        for extension in self.extensions:
            extension.setup(self.model, self.dataset, self.algorithm)

    def run_callbacks_and_monitoring(self) -> None:
        """Monitor, then (if every parameter is finite) call the extensions.

        The finiteness check comes before the extensions so that none of them
        (e.g. ``MonitorBasedSaveBest``) ever saves a diverged model.
        """
        with self._shown_values():
            self.model.monitor()
            if not self.quiet:
                logger.info("%s", self.model.monitor.format_report())
            self._check_finite()
            for extension in self.extensions:
                extension.on_monitor(self.model, self.dataset, self.algorithm)

    def save(self) -> None:
        if not self.save_path:
            return
        with self._shown_values():
            for extension in self.extensions:
                extension.on_save(self.model, self.dataset, self.algorithm)
            persistence.save(self.save_path, self.model)

    @contextlib.contextmanager
    def _shown_values(self):
        """Put the values the extensions ask to show (``shown_values``, e.g.
        Polyak averages) into the parameters; put the trained ones back after."""
        shown: dict = {}
        for extension in self.extensions:
            values = extension.shown_values() or {}
            for param in values:
                if param in shown:
                    raise ValueError(
                        f"two extensions ask to show their own values of {param.name!r} "
                        f"(the second is a {type(extension).__name__}); keep one of them"
                    )
            shown.update(values)
        trained = [(param, param.get_value()) for param in shown]
        try:
            for param, value in shown.items():
                param.set_value(value)
            yield
        finally:
            for param, value in trained:
                param.set_value(value)

    # -- checkpoints and stopping ------------------------------------------------
    def request_stop(self, reason: str) -> None:
        """Ask the run to stop at the next minibatch boundary (signal handlers call this)."""
        self.algorithm.stop_requested = reason

    def checkpoint(self, finished: bool = False) -> None:
        if not self.checkpoint_path:
            return
        persistence.save_checkpoint(
            self.checkpoint_path, self, finished=finished, config_text=self.config_text
        )
        self.checkpointed = True

    def resume(self, path) -> dict:
        """Set up, then restore the state saved in the checkpoint ``path``; return that state.

        Checkpoints written before ``SGD`` and its ``Momentum`` rule owned the
        base learning rate and momentum resume as they would have
        (:mod:`~pylearn_vae.training_algorithms.legacy_state`).
        Changed hyper-parameters are applied afterwards, with
        :meth:`SGD.change_hyperparameters <pylearn_vae.training_algorithms.sgd.SGD.change_hyperparameters>`.
        """
        self.setup()
        state = persistence.load_checkpoint(path, self)
        adopt_saved_bases(state, self.algorithm)
        self._resumed = True
        return state

    def _check_finite(self) -> None:
        epoch = self.model.monitor.get_epochs_seen()
        for param in self.model.get_params():
            value = param.get_value(borrow=True)
            if not np.isfinite(value).all():
                bad = "nan" if np.isnan(value).any() else "inf"
                if epoch == 0:
                    raise NumericalError(
                        f"parameter {param.name!r} is {bad} before any training; check its "
                        "initial value in the YAML"
                    )
                raise NumericalError(f"parameter {param.name!r} became {bad} during epoch {epoch}")
        for name, channel in self.model.monitor.channels.items():
            if (
                name.endswith("objective")
                and channel.val_record
                and not np.isfinite(channel.val_record[-1])
            ):
                raise NumericalError(
                    f"monitor channel {name!r} is {channel.val_record[-1]} after epoch {epoch}"
                )

    def _end_of_epoch(self) -> None:
        self.run_callbacks_and_monitoring()
        epochs = self.model.monitor.get_epochs_seen()
        if self.checkpoint_path and epochs % self.checkpoint_every == 0:
            self.checkpoint()
        for callback in self.epoch_callbacks:
            callback(self)

    def main_loop(self) -> None:
        """Monitor, then train epoch after epoch until the termination criterion says stop.

        A checkpoint (if ``checkpoint_path`` is set) is written after every
        ``checkpoint_every`` epochs, before the termination criterion is
        consulted, and when a stop is requested; a run restored with
        :meth:`resume` continues exactly where the checkpoint left it. It all
        runs under the numerics setting (:func:`pylearn_vae.numerics.applied`);
        every extension is closed when it ends, however it ends.
        """
        error = None
        try:
            with numerics.applied():
                self._main_loop()
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._close_extensions(error)

    def _close_extensions(self, error: BaseException | None) -> None:
        """Close every extension; a failure to close is raised after all are
        closed, unless the run already failed (then it is logged)."""
        failures = []
        for extension in self.extensions:
            try:
                extension.close(error)
            except Exception as exc:
                failures.append(exc)
        if failures and error is None:
            raise failures[0]
        for exc in failures:
            logger.warning("closing an extension failed too: %s: %s", type(exc).__name__, exc)

    def _main_loop(self) -> None:
        if not self._resumed:
            self.setup()
            self._end_of_epoch()
        self.training_started = True
        while True:
            if self.algorithm.stop_requested:
                self.checkpoint()
                raise StopRequested(f"stopped by {self.algorithm.stop_requested} between epochs")
            if not self.algorithm.continue_learning(self.model):
                break
            start = time.perf_counter()
            try:
                self.algorithm.train(dataset=self.dataset)
            except StopRequested:
                self.checkpoint()
                raise
            self.model.monitor.report_epoch(time.perf_counter() - start)
            self._end_of_epoch()
            epochs = self.model.monitor.get_epochs_seen()
            if self.save_freq and epochs % self.save_freq == 0:
                self.save()
            self.model.monitor.report_epoch_total(time.perf_counter() - start)
        self.save()
        self.checkpoint(finished=True)
        self.finished = True
