"""One trial of a sweep: the trial's YAML, trained as ``scripts/train.py`` trains it.

:func:`run_trial` runs inside a Ray worker. It writes the trial's YAML (the
base YAML with the trial's values) into the trial's working folder and runs
it as a :class:`~pylearn_vae.job.TrainingJob`, the object that runs
``scripts/train.py``'s jobs, with a checkpoint after every epoch.
After each epoch (once its checkpoint is on disk) every monitor channel is
reported to Ray Tune together with a copy of the checkpoint, so that Tune
can stop the trial, or pause it, move it to another worker and resume it
bit for bit (``Train.resume``).

A trial that diverges (``NumericalError``, exit status 3 of ``train.py``)
reports ``sweep_status: diverged`` with the reason and ends normally:
retrying it from its last checkpoint would diverge again. Any other failure
raises, so that Tune retries the trial from its last checkpoint (a killed
worker, a lost node) up to ``max_failures`` times.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pylearn_vae.config import yaml_parse
from pylearn_vae.errors import TrialDataError
from pylearn_vae.sweep.overrides import apply_overrides
from pylearn_vae.utils.files import atomic_write_text

__all__ = ["TrialPlan", "TrialDataError", "run_trial", "render", "check_node"]

logger = logging.getLogger(__name__)

#: The file name of a trial's YAML inside its working folder.
TRIAL_YAML = "trial.yaml"


@dataclass(frozen=True)
class TrialPlan:
    """What every trial of a sweep shares (sent to the workers once)."""

    base_text: str
    base_source: str
    metric: str
    epochs: int
    #: Values every trial sets (YAML texts), e.g. the epoch budget.
    fixed: dict = field(default_factory=dict)
    #: Where each key was written in the sweep file (for error messages).
    where: dict = field(default_factory=dict)
    #: Every trial a run of one MLflow experiment: the MLflow extension's
    #: ``tracking_uri`` and ``experiment_name`` (None: no MLflow).
    mlflow: dict | None = None

    def trial_yaml(self, config: dict) -> str:
        """The YAML text of the trial whose sampled values are ``config``."""
        values = dict(self.fixed)
        values.update({key: render(value) for key, value in config.items()})
        return apply_overrides(self.base_text, self.base_source, values, self.where)


def render(value) -> str:
    """YAML text for a sampled value: strings are YAML already, numbers are written out."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return yaml_parse.dump(value)
    if isinstance(value, int) or (hasattr(value, "dtype") and value.dtype.kind in "iu"):
        return yaml_parse.dump(int(value))
    return yaml_parse.dump(float(value))


def node_name() -> str:
    """``host (ip)`` of this machine, for messages about a node."""
    host = socket.gethostname()
    ray = sys.modules.get("ray")  # (in a Ray worker; not imported just for a message)
    if ray is None:
        return host
    try:
        ip = ray.util.get_node_ip_address()
    except Exception:  # Ray cannot tell
        return host
    return f"{host} ({ip})"


def _missing_data(exc: BaseException) -> bool:
    from pylearn_vae.datasets.binarized_mnist import DataMissingError

    while exc is not None:
        if isinstance(exc, DataMissingError):
            return True
        exc = exc.__cause__
    return False


def _prepared(job):
    """``job.prepare()``: the trial's Train object (a missing data set names this node)."""
    try:
        return job.prepare()
    except Exception as exc:
        if _missing_data(exc):
            data = os.environ.get("PYLEARN2_DATA_PATH", "unset")
            raise TrialDataError(
                f"node {node_name()} lacks the data (PYLEARN2_DATA_PATH={data}): {exc}"
            ) from exc
        raise


def check_node(plan: TrialPlan) -> str | None:
    """Build the base YAML's objects on this node; None if fine, else what is wrong.

    Loads the data sets (which is what fails on a node without them) but
    compiles nothing.
    """
    from pylearn_vae.job import TrainingJob

    with tempfile.TemporaryDirectory(prefix="sweep-check-") as folder:
        text = apply_overrides(plan.base_text, plan.base_source, plan.fixed)
        try:
            _prepared(TrainingJob(Path(folder) / TRIAL_YAML, text=text))
        except TrialDataError as exc:
            return str(exc)
        except Exception as exc:
            return f"node {node_name()}: {type(exc).__name__}: {exc}"
    return None


def _channels(train) -> dict:
    monitor = train.model.monitor
    values = {name: float(monitor.channel_value(name)) for name in monitor.channels}
    values["epochs_seen"] = monitor.get_epochs_seen()
    return values


def _restore_files(restored, folder: Path) -> None:
    """Copy the files of Ray Tune's checkpoint ``restored`` (if any) into ``folder``."""
    if restored is None:
        return
    with restored.as_directory() as saved:
        for path in Path(saved).iterdir():
            shutil.copy2(path, folder / path.name)


def _reporter(plan: TrialPlan, job, process: dict):
    """The epoch callback that reports the monitor channels and the checkpoint to Ray Tune
    (with the checkpoint, the models the trial wrote: ``job.run_files()``).

    ``process`` is merged into every report; its ``resumed_from`` entry is
    read at each call, so the caller may set it after a resume.
    """
    from ray import tune

    def report(train) -> None:
        values = _channels(train)
        if values["epochs_seen"] == process["resumed_from"]:
            return  # the monitoring pass before training
        if plan.metric not in values:
            raise ValueError(
                f"the sweep's metric {plan.metric!r} is not a monitor channel of this model; "
                f"its channels: {', '.join(sorted(train.model.monitor.channels))}"
            )
        values.update(sweep_status="running", sweep_reason="", **process)
        with tempfile.TemporaryDirectory(prefix="sweep-ckpt-") as keep:
            for path in job.run_files():
                shutil.copy2(path, keep)
            tune.report(values, checkpoint=tune.Checkpoint.from_directory(keep))

    return report


def run_trial(config: dict, plan: TrialPlan) -> None:
    """Ray Tune function trainable: train the trial described by ``config``."""
    from ray import tune

    from pylearn_vae.job import RunFinished, TrainingJob
    from pylearn_vae.training_algorithms.sgd import NumericalError

    folder = Path.cwd()
    config_path = folder / TRIAL_YAML
    text = plan.trial_yaml(config)
    atomic_write_text(config_path, text)
    restored = tune.get_checkpoint()
    _restore_files(restored, folder)
    # Without Tune's checkpoint the trial starts over, also over what an earlier
    # attempt left in its folder before it could report.
    resume = restored is not None
    # (An earlier attempt of this trial, in a worker Ray is still stopping,
    # may hold the locks of its files for a moment.)
    mlflow = None
    if plan.mlflow is not None:
        mlflow = {**plan.mlflow, "run_name": tune.get_context().get_trial_name()}
    job = TrainingJob(
        config_path,
        text=text,
        quiet=True,
        resume=resume,
        restart=not resume,
        lock_wait=120,
        mlflow=mlflow,
    )
    try:
        train = _prepared(job)
    except RunFinished as done:  # (the checkpoints a trial reports are of unfinished runs)
        logger.info("%s", done)
        return
    process = {"resumed_from": 0, "pid": os.getpid(), "node": node_name()}

    def resumed(where) -> None:
        process["resumed_from"] = where.epochs_seen
        logger.info("trial resumed from its checkpoint at epoch %d", where.epochs_seen)

    try:
        job.run(on_resumed=resumed, on_epoch=_reporter(plan, job, process))
    except NumericalError as exc:
        logger.warning("trial diverged: %s", exc)
        values = {plan.metric: math.nan, "epochs_seen": train.model.monitor.get_epochs_seen()}
        values.update(sweep_status="diverged", sweep_reason=str(exc), **process)
        tune.report(values)
