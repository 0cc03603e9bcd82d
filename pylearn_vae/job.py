"""One training job: a YAML file trained as ``scripts/train.py`` and a sweep trial train it.

:class:`TrainingJob` is the one object that runs a training job; the
programs construct it with arguments and keep only what is theirs (the
terminal, exit codes and signals; Ray Tune's reports). It owns:

* the YAML, read once and parsed once: the parsed file is compared with the
  YAML a checkpoint was made with (both as written, ``${VAR}`` unexpanded),
  then built;
* Pylearn2's ``PYLEARN2_TRAIN_*`` variables for ``${...}`` in it
  (:func:`train_environ`);
* the run's files, named after the file's stem: the checkpoint
  ``<stem>_checkpoint.h5`` and the models the YAML saves as ``<stem>.pkl``,
  ``<stem>_best.pkl``, ... (:meth:`TrainingJob.run_files`);
* how the run starts: fresh (refused next to an unfinished run's
  checkpoint), over it (``restart``), or from it (``resume``; ``force``
  accepts a changed YAML and applies a changed ``learning_rate`` or
  ``init_momentum`` through :meth:`SGD.change_hyperparameters
  <pylearn_vae.training_algorithms.sgd.SGD.change_hyperparameters>`);
* the epoch budget, quiet reports and how often a checkpoint is written;
* TensorBoard curves of the monitor channels in a folder given by the
  caller (:class:`~pylearn_vae.train_extensions.tensorboard.TensorBoard`)
  and an MLflow run (:class:`~pylearn_vae.train_extensions.mlflow.MLflow`,
  experiment named after the YAML), both added after the YAML's extensions;
* one run at a time per output: from :meth:`TrainingJob.prepare` to the end
  of :meth:`TrainingJob.run` it holds the locks (:mod:`pylearn_vae.utils.locks`)
  of its checkpoint and of every model file the YAML saves, so a second run
  writing any of them stops at once with :class:`OutputInUse`;
* the process settings (:func:`pylearn_vae.speedups.prepare_process`),
  the training step's BLAS threads (:func:`pylearn_vae.speedups.thread_chooser`:
  measured before the first epoch unless the user fixed them) and whether a
  second process compiles while this one does.

A library user who calls :meth:`Train.main_loop <pylearn_vae.train.Train.main_loop>`
directly gets none of these.
"""

from __future__ import annotations

import contextlib
import math
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pylearn_vae import speedups
from pylearn_vae.config import yaml_parse
from pylearn_vae.config.compare import describe_changes, parse_as_written, parsed_changes
from pylearn_vae.errors import (
    ConfigChanged,
    ConfigFileError,
    JobRefused,
    MissingExtraError,
    OutputInUse,
    RunFinished,
    UnfinishedRun,
)
from pylearn_vae.persistence import ModelFileError, read_checkpoint_info
from pylearn_vae.termination_criteria import EpochCounter
from pylearn_vae.train import Train
from pylearn_vae.train_extensions import mlflow as mlflow_extension
from pylearn_vae.train_extensions import tensorboard as tensorboard_extension
from pylearn_vae.utils import locks
from pylearn_vae.utils.files import (
    check_output_folder,
    check_output_path,
    check_path_name,
    read_text_file,
)
from pylearn_vae.utils.processes import usable_cpus

__all__ = [
    "ConfigChanged",
    "ConfigFileError",
    "JobRefused",
    "MissingExtraError",
    "OutputInUse",
    "Resumed",
    "RunFinished",
    "TrainingJob",
    "UnfinishedRun",
    "train_environ",
]

#: Suffixes of the model files a run writes (kept with a sweep trial's checkpoint).
MODEL_SUFFIXES = (".h5", ".hdf5", ".pkl")


def _same_path(a, b) -> bool:
    return b is not None and os.path.abspath(a) == os.path.abspath(b)


#: The largest training YAML read.
MAX_CONFIG_BYTES = 16 << 20


def train_environ(config: str) -> dict[str, str]:
    """The ``PYLEARN2_TRAIN_*`` variables Pylearn2's train.py published for ``config``.

    >>> train_environ("runs/exp.yaml")["PYLEARN2_TRAIN_FILE_FULL_STEM"]
    'runs/exp'
    """
    full_stem = config[: -len(".yaml")] if config.endswith(".yaml") else config
    directory = os.path.dirname(config)
    return {
        "PYLEARN2_TRAIN_FILE_FULL_STEM": full_stem,
        "PYLEARN2_TRAIN_FILE_STEM": os.path.basename(full_stem),
        "PYLEARN2_TRAIN_FILE_NAME": os.path.basename(config),
        "PYLEARN2_TRAIN_BASE_NAME": os.path.basename(config),
        "PYLEARN2_TRAIN_DIR": directory + "/" if directory else "",
    }


@dataclass(frozen=True)
class Resumed:
    """Where a resumed run goes on, and what ``force`` applied to it."""

    #: Epochs done.
    epochs_seen: int
    #: Minibatches of the current epoch already done (0: it starts at an epoch boundary).
    position: int
    #: ``"path: old -> new (learning rate now ..., was ...)"`` for each applied change.
    applied: list[str] = field(default_factory=list)
    #: Paths of the other changes (their objects are rebuilt from the YAML).
    unapplied: list[str] = field(default_factory=list)


class TrainingJob:
    """Train the ``Train`` object that the YAML file ``config`` describes.

    Parameters
    ----------
    config : str or path
        The YAML file. Its stem names the run's files and fills
        ``${PYLEARN2_TRAIN_*}``.
    text : str, optional
        The file's text, when the caller has it already (it is not read again).
    epochs : int, optional
        Train until this many epochs in total (replaces the YAML's
        termination criterion).
    quiet : bool
        Do not log the per-epoch monitor report.
    resume : bool
        Continue from the checkpoint (refused if there is none, and when it
        finished or its YAML differs, unless ``force``).
    force : bool
        With ``resume``: accept a changed YAML; a changed ``learning_rate``
        or ``init_momentum`` is applied to the restored state.
    restart : bool
        Start over although an unfinished run's checkpoint exists.
    checkpoint_every : int
        Write the checkpoint every this many epochs (0: never).
    lock_wait : float
        Seconds to wait for another process's lock on this run's files before
        refusing to start (a sweep trial waits for its own earlier attempt).
    tensorboard : str or path, optional
        Also write the monitor channels and the YAML as TensorBoard events to
        this folder (made if missing; a resumed run continues its curves).
        Needs the ``[tensorboard]`` extra: :class:`MissingExtraError` at once
        without it.
    mlflow : str, True or dict, optional
        Also log the run to MLflow: parameters from the YAML, the monitor
        channels per epoch, the saved model files (experiment: the YAML's
        file stem). ``True`` uses MLflow's default store, a string is a
        tracking URI, a dict holds the keywords of
        :class:`~pylearn_vae.train_extensions.mlflow.MLflow`. Needs the
        ``[mlflow]`` extra.
    """

    def __init__(
        self,
        config,
        *,
        text: str | None = None,
        epochs: int | None = None,
        quiet: bool = False,
        resume: bool = False,
        force: bool = False,
        restart: bool = False,
        checkpoint_every: int = 1,
        lock_wait: float = 0.0,
        tensorboard: str | os.PathLike | None = None,
        mlflow: str | bool | None = None,
    ) -> None:
        if epochs is not None and epochs < 0:
            raise ValueError(f"TrainingJob: epochs must be >= 0, got {epochs}")
        if checkpoint_every < 0:
            raise ValueError(f"TrainingJob: checkpoint_every must be >= 0, got {checkpoint_every}")
        if force and not resume:
            raise ValueError("TrainingJob: force=True needs resume=True")
        if restart and resume:
            raise ValueError("TrainingJob: restart and resume contradict each other; choose one")
        if tensorboard is not None:
            check_path_name(tensorboard, "tensorboard folder")
            tensorboard_extension.summary_writer_class()  # (the extra is missing: say so now)
        if mlflow is not None and mlflow is not False:
            mlflow_extension.mlflow_client_class()
            if isinstance(mlflow, str):
                mlflow_extension.check_tracking_uri(mlflow)
        self.config = os.fspath(config)
        self.text = text
        self.epochs = epochs
        self.quiet = bool(quiet)
        self.resume = bool(resume)
        self.force = bool(force)
        self.restart = bool(restart)
        self.checkpoint_every = int(checkpoint_every)
        self.lock_wait = float(lock_wait)
        self.tensorboard = None if tensorboard is None else os.fspath(tensorboard)
        self.mlflow = None if mlflow is False else mlflow
        #: ``${PYLEARN2_TRAIN_*}`` values for the YAML.
        self.environ = train_environ(self.config)
        self.checkpoint_path = self.environ["PYLEARN2_TRAIN_FILE_FULL_STEM"] + "_checkpoint.h5"
        #: The ``Train`` object, once :meth:`prepare` built it.
        self.train: Train | None = None
        #: ``(path, old, new)`` for each way the YAML differs from a resumed checkpoint's.
        self.changes: list = []
        self._locks = contextlib.ExitStack()
        weakref.finalize(self, self._locks.close)

    # -- building -----------------------------------------------------------------
    def prepare(self) -> Train:
        """Apply the process settings, check that the run may start, and build it.

        Raises :class:`JobRefused` (or a subclass) when the run may not start
        as asked, :class:`ConfigFileError` for a file that is not a training
        YAML, and the YAML parser's errors. Returns the ``Train`` object
        (built once; later calls return it).
        """
        if self.train is not None:
            return self.train
        speedups.prepare_process()
        try:
            return self._prepare()
        except BaseException:
            self.close()
            raise

    def _prepare(self) -> Train:
        text = self._read() if self.text is None else self.text
        parsed = yaml_parse.load(text, environ=self.environ, instantiate=False, source=self.config)
        # (after parsing: a file that is no YAML leaves no lock file behind)
        self._locks.enter_context(locks.hold([self.checkpoint_path], self.lock_wait))
        if not (self.resume or self.restart):
            self._refuse_to_replace_an_unfinished_run()
        saved = self._saved_config() if self.resume else ""
        if saved:
            old = parse_as_written(saved, f"{self.checkpoint_path}:config_yaml")
            self.changes = parsed_changes(old, parsed)
            if self.changes and not self.force:
                differences = describe_changes(self.changes)
                summary = (
                    f"{self.config} differs from the configuration {self.checkpoint_path} "
                    "was made with:"
                )
                raise ConfigChanged(
                    summary + "\n  " + "\n  ".join(differences), differences, summary
                )
        train = yaml_parse.instantiate(parsed)
        if not isinstance(train, Train):
            raise ConfigFileError(
                f"{self.config} describes a {type(train).__name__}, expected a "
                "pylearn_vae.train.Train"
            )
        self._configure(train, text)
        outputs = output_paths(train)
        for index, path in enumerate(outputs):
            for other in outputs[:index]:
                if _same_path(path, other):
                    raise JobRefused(
                        f"{self.config} saves two models to {path} (two save_path values "
                        "name one file); give each its own name"
                    )
        for path in outputs:  # (a folder or a FIFO named as the model: refused now, not at the end)
            if _same_path(path, self.checkpoint_path):
                raise JobRefused(
                    f"{self.config} saves a model to {path}, the run's own checkpoint file; "
                    "give the model another name"
                )
            try:
                check_output_path(path)
            except ModelFileError as exc:
                raise JobRefused(str(exc)) from None
        train.extensions.extend(self._trackers())
        self._locks.enter_context(locks.hold(outputs, self.lock_wait))
        self.train = train
        return train

    def _trackers(self) -> list:
        """The TensorBoard and MLflow extensions the caller asked for."""
        trackers = []
        if self.tensorboard is not None:
            try:
                check_output_folder(self.tensorboard, "tensorboard folder")
            except ModelFileError as exc:
                raise JobRefused(str(exc)) from None
            trackers.append(tensorboard_extension.TensorBoard(self.tensorboard))
        if self.mlflow is not None:
            settings = {"experiment_name": self.environ["PYLEARN2_TRAIN_FILE_STEM"] or "Default"}
            if isinstance(self.mlflow, dict):
                settings.update(self.mlflow)
            elif self.mlflow is not True:
                settings["tracking_uri"] = self.mlflow
            trackers.append(mlflow_extension.MLflow(**settings))
        return trackers

    def close(self) -> None:
        """Release the output locks (:meth:`run` does when it ends)."""
        self._locks.close()

    def _read(self) -> str:
        path = Path(self.config)
        if not path.is_file():
            problem = "is not a regular file" if path.exists() else "does not exist"
            raise JobRefused(f"configuration file {self.config} {problem}")
        try:  # (bounded: the file may have been replaced by a FIFO since)
            return read_text_file(path, "configuration file", MAX_CONFIG_BYTES)
        except ModelFileError as exc:
            raise ConfigFileError(str(exc)) from None

    def _refuse_to_replace_an_unfinished_run(self) -> None:
        checkpoint = self.checkpoint_path
        if not os.path.lexists(checkpoint):
            return
        try:
            info = read_checkpoint_info(checkpoint)
        except ModelFileError as exc:
            reason = f"{checkpoint} exists but cannot be read ({exc})"
        else:
            if info["finished"]:
                return
            reason = f"{checkpoint} holds an unfinished run ({info['epochs_seen']} epochs done)"
        raise UnfinishedRun(f"{reason}; a new run would replace it and its best model")

    def _saved_config(self) -> str:
        """The YAML the checkpoint to resume from was made with ("" if it kept none)."""
        if not Path(self.checkpoint_path).exists():
            raise JobRefused(
                f"there is no checkpoint to resume from: {self.checkpoint_path} does not exist"
            )
        info = read_checkpoint_info(self.checkpoint_path)
        if info["finished"]:
            raise RunFinished(
                f"{self.config}: the run in {self.checkpoint_path} already finished "
                f"({info['epochs_seen']} epochs); nothing to do"
            )
        return info["config_yaml"]

    def _configure(self, train: Train, text: str) -> None:
        if self.epochs is not None:
            train.algorithm.termination_criterion = EpochCounter(self.epochs, new_epochs=False)
        train.quiet = self.quiet
        train.config_text = text
        if hasattr(train.algorithm, "threads"):
            train.algorithm.threads = speedups.thread_chooser()
        if self.checkpoint_every:
            train.checkpoint_path = self.checkpoint_path
            train.checkpoint_every = self.checkpoint_every

    # -- running ------------------------------------------------------------------
    def run(
        self,
        on_resumed: Callable[[Resumed], None] | None = None,
        on_epoch: Callable[[Train], None] | None = None,
    ) -> Train:
        """Train (after :meth:`prepare`, which is called if it was not); return the ``Train``.

        ``on_resumed(resumed)`` is called once a checkpoint is restored
        (:class:`Resumed`), before training goes on; ``on_epoch(train)`` at
        the end of every epoch, once its checkpoint is written
        (``Train.epoch_callbacks``). Where there is a second CPU, a first
        run compiles the monitoring function in a second process while this
        one compiles the training step.
        """
        train = self.prepare()
        if on_epoch is not None:
            train.epoch_callbacks.append(on_epoch)
        try:
            with speedups.second_process_compiles(usable_cpus() > 1):
                if self.resume:
                    resumed = self._restore(train)
                    if on_resumed is not None:
                        on_resumed(resumed)
                train.main_loop()
        finally:
            self.close()
        return train

    def _restore(self, train: Train) -> Resumed:
        state = train.resume(self.checkpoint_path)
        applied: dict[str, str] = {}
        for path, old, new in self.changes:
            key = path.rsplit(".", 1)[-1]
            if key == "learning_rate" and _number(new) and _number(old) and old > 0:
                changed = train.algorithm.change_hyperparameters(learning_rate=(old, new))
                before, after = changed["learning_rate"]
                note = f"learning rate now {after:.6g}, was {before:.6g}"
            elif key == "init_momentum" and _number(new):
                changed = train.algorithm.change_hyperparameters(init_momentum=(old, new))
                if "momentum" not in changed:
                    continue
                before, after = changed["momentum"]
                note = f"momentum now {after:.6g}, was {before:.6g}"
            else:
                continue
            applied[path] = f"{path}: {old!r} -> {new!r} ({note})"
        return Resumed(
            epochs_seen=train.model.monitor.get_epochs_seen(),
            position=int(state["algorithm"]["resume_position"]),
            applied=list(applied.values()),
            unapplied=[path for path, _, _ in self.changes if path not in applied],
        )

    def run_files(self) -> list[Path]:
        """The files of the run next to its YAML: the checkpoint and the model files
        whose names start with the file's stem (``<stem>.pkl``, ``<stem>_best.h5``, ...)."""
        stem = Path(self.environ["PYLEARN2_TRAIN_FILE_FULL_STEM"])
        return [
            path
            for path in sorted(stem.parent.iterdir())
            if path.is_file() and path.name.startswith(stem.name) and path.suffix in MODEL_SUFFIXES
        ]


def output_paths(train: Train) -> list[str]:
    """The model files ``train`` saves: its ``save_path`` and each extension's."""
    paths = [train.save_path]
    paths += [getattr(extension, "save_path", None) for extension in train.extensions]
    return [path for path in paths if path]


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
