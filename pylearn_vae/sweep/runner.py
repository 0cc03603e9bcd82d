"""Run a sweep on Ray Tune: locally by default, on a cluster when given its address.

Everything a sweep writes goes into one output folder:

``trials/``
    Ray Tune's experiment (trial results and checkpoints); ``--resume``
    continues from it.
``results.csv``, ``results.json``
    one row per trial: its values, best metric and epoch, epochs run, status
    (``completed``, ``stopped early``, ``diverged``, ``failed``, ``unfinished``)
    and why.
``best.yaml``
    the best trial's YAML, ready for ``scripts/train.py``.
``sweep.json``
    the sweep and base YAML texts the sweep was started with (a resumed
    sweep must use the same).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import logging
import math
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pylearn_vae.errors import ModelFileError, OutputInUse, SweepError
from pylearn_vae.sweep.channels import check_metric
from pylearn_vae.sweep.spec import SweepSpec, SweepSpecError
from pylearn_vae.sweep.trial import TrialPlan, check_node, run_trial
from pylearn_vae.utils import locks
from pylearn_vae.utils.files import atomic_write_text, read_text_file
from pylearn_vae.utils.processes import children_ignore_interrupts

__all__ = [
    "SweepError",
    "SweepResult",
    "TrialRow",
    "make_plan",
    "start_ray",
    "run_sweep",
    "worker_env",
]

logger = logging.getLogger(__name__)

EXPERIMENT = "trials"
#: The file sweep.py puts in each trials folder it makes: ``--restart``
#: deletes only a folder that holds it.
MARKER = ".pylearn_vae_sweep"
MARKER_TEXT = "made by pylearn_vae's sweep.py; sweep.py --restart may delete this folder\n"
TERMINATION_KEY = "algorithm.termination_criterion"


@dataclass
class TrialRow:
    """One line of the results table."""

    trial_id: str
    config: dict
    status: str
    best: float | None
    best_epoch: int | None
    epochs: int
    reason: str = ""
    resumed_from: int = 0
    #: Wall time of the trial as the driver saw it (worker start to end).
    seconds: float | None = None
    #: Time inside the trial's function (Ray Tune's ``time_total_s``).
    trial_seconds: float | None = None
    #: Time of the SGD passes alone (the sum of ``seconds_per_epoch``).
    training_seconds: float | None = None


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns: rows sorted best first, and the files written."""

    rows: list
    best: TrialRow | None
    out_dir: Path
    #: Trials the sweep stopped before they ended (Ctrl-C on the driver).
    unfinished: int = 0
    files: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


class _LogLines(io.TextIOBase):
    """A text stream that sends each line to ``logger.debug`` (Ray Tune prints tables)."""

    def __init__(self) -> None:
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            if line.strip():
                logger.debug("ray tune: %s", line)
        return len(text)


def worker_env(cpus_per_trial: int) -> dict[str, str]:
    """Thread counts for trial processes: one BLAS thread per CPU a trial holds
    (``PYLEARN_VAE_THREADS`` too, which a training job would otherwise follow
    over the libraries' own variables, or measure)."""
    n = str(cpus_per_trial)
    return {
        "PYLEARN_VAE_THREADS": n,
        "OMP_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "NUMBA_NUM_THREADS": n,
    }


def start_ray(
    address: str | None = None,
    num_cpus: int | None = None,
    cpus_per_trial: int = 1,
    temp_dir: str | None = None,
    log_level: int = logging.WARNING,
) -> bool:
    """Connect to Ray; return whether this call started the connection.

    With no ``address`` (and no ``RAY_ADDRESS``), a local Ray instance with
    ``num_cpus`` CPUs (default: all) is started; otherwise the cluster at
    ``HOST:PORT`` is joined. Trial processes get one BLAS thread per CPU
    they hold. An existing connection is kept as it is. ``log_level`` is the
    level of Ray's own log messages.
    """
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict = {
        "runtime_env": {"env_vars": worker_env(cpus_per_trial)},
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": log_level,
    }
    if address is None:
        kwargs.update(address="local", num_cpus=num_cpus or os.cpu_count())
        if temp_dir:
            kwargs["_temp_dir"] = temp_dir
    else:
        kwargs["address"] = address
    try:
        with children_ignore_interrupts():  # (a Ctrl-C is the driver's to handle)
            ray.init(**kwargs)
    except ConnectionError as exc:
        cause, token = exc.__cause__, False
        while cause is not None:
            token = token or "token" in str(cause).lower()
            cause = cause.__cause__
        hint = (
            "; the cluster asks for its authentication token: set RAY_AUTH_MODE=token, with "
            "the head node's token in ~/.ray/auth_token or RAY_AUTH_TOKEN"
            if token
            else ""
        )
        raise SweepError(f"cannot reach the Ray cluster at {address}: {exc}{hint}") from None
    return True


def make_plan(spec: SweepSpec) -> TrialPlan:
    """The trial plan of ``spec``, with every dotted key checked against the base YAML."""
    from pylearn_vae.sweep.overrides import check_paths

    budget = f"!obj:pylearn_vae.termination_criteria.EpochCounter {{max_epochs: {spec.epochs}}}"
    where = {d.key: d.where for d in spec.dimensions}
    if TERMINATION_KEY in where:
        raise SweepSpecError(
            f"{TERMINATION_KEY} is set by epochs; remove it from search_space",
            where[TERMINATION_KEY],
        )
    where[TERMINATION_KEY] = spec.where["epochs"]
    check_paths(spec.base_text, str(spec.base), list(where), where)
    metric_where = spec.where.get("metric", f"{spec.path} (metric: {spec.metric}, the default)")
    check_metric(spec.metric, spec.base_text, str(spec.base), metric_where)
    return TrialPlan(
        base_text=spec.base_text,
        base_source=str(spec.base),
        metric=spec.metric,
        epochs=spec.epochs,
        fixed={TERMINATION_KEY: budget},
        where=where,
    )


def _param_space(spec: SweepSpec) -> dict:
    from ray import tune

    space = {}
    for d in spec.dimensions:
        if d.kind == "constant":
            space[d.key] = d.options[0]
        elif d.kind == "choice":
            space[d.key] = tune.choice(list(d.options))
        elif d.kind == "grid":
            space[d.key] = tune.grid_search(list(d.options))
        else:
            space[d.key] = getattr(tune, d.kind)(d.low, d.high)
    return space


def _scheduler(spec: SweepSpec):
    from ray.tune import schedulers

    if spec.scheduler == "asha":
        return schedulers.ASHAScheduler(
            time_attr="epochs_seen",
            max_t=spec.epochs,
            grace_period=min(spec.grace_period, spec.epochs),
            reduction_factor=spec.reduction_factor,
        )
    if spec.scheduler == "hyperband":
        return schedulers.HyperBandScheduler(
            time_attr="epochs_seen", max_t=spec.epochs, reduction_factor=spec.reduction_factor
        )
    return schedulers.FIFOScheduler()


def check_nodes(plan: TrialPlan) -> None:
    """Build the base YAML's objects (data sets included) once on every alive node.

    Raises :class:`SweepError` naming each node where that fails (missing
    data, a missing package, ...), before any trial starts.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    check = ray.remote(num_cpus=0, max_retries=0)(check_node)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = [
        check.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
        ).remote(plan)
        for n in nodes
    ]
    problems = []
    for node, ref in zip(nodes, refs):
        try:
            problem = ray.get(ref)
        except Exception as exc:  # the check itself could not run there (e.g. no package)
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            problem = f"node {node.get('NodeManagerAddress')}: the check failed: {lines[-1]}"
        if problem:
            problems.append(problem)
    if problems:
        raise SweepError("; ".join(problems))


class _Manifest:
    """``sweep.json``: what a sweep was started with, compared on ``--resume``."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / "sweep.json"

    def write(self, spec: SweepSpec) -> None:
        record = {"sweep": str(spec.path), "sweep_text": spec.text, "base": str(spec.base)}
        record["base_text"] = spec.base_text
        atomic_write_text(self.path, json.dumps(record, indent=1))

    def differences(self, spec: SweepSpec) -> list[str]:
        try:
            record = json.loads(read_text_file(self.path, "the sweep record", 64 << 20))
        except (ModelFileError, ValueError, RecursionError) as exc:
            return [f"{self.path} cannot be read ({type(exc).__name__}: {exc})"]
        if not isinstance(record, dict):
            return [f"{self.path} is not the record of a sweep"]
        changed = []
        if record.get("sweep_text") != spec.text:
            changed.append(f"{spec.path} changed since the sweep started")
        if record.get("base_text") != spec.base_text:
            changed.append(f"the base YAML {spec.base} changed since the sweep started")
        return changed


def _tune_callbacks(extra, mlflow: dict | None = None):
    from ray import tune

    class Timing(tune.Callback):
        """Wall time of each trial as the driver sees it (process start to end)."""

        def __init__(self) -> None:
            self.started: dict = {}
            self.seconds: dict = {}

        def on_trial_start(self, iteration, trials, trial, **info) -> None:
            self.started.setdefault(trial.trial_id, time.monotonic())

        def _end(self, trial) -> None:
            if trial.trial_id in self.started:
                self.seconds[trial.trial_id] = time.monotonic() - self.started[trial.trial_id]

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self._end(trial)

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            self._end(trial)

    class EndMLflowRuns(tune.Callback):
        """Mark each trial's MLflow run ended as Ray Tune ends the trial."""

        def _end(self, trial, status: str) -> None:
            from pylearn_vae.train_extensions.mlflow import end_named_run

            try:
                end_named_run(mlflow, str(trial), status)
            except Exception as exc:  # (the sweep goes on; the run stays RUNNING)
                logger.warning("could not end the MLflow run of trial %s: %s", trial, exc)

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self._end(trial, "FINISHED")

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            self._end(trial, "FAILED")

    timing = Timing()
    ending = [EndMLflowRuns()] if mlflow is not None else []
    return timing, [timing, *ending, *(extra or [])]


def _display(value):
    """A table value: numbers as numbers, YAML texts as numbers when they are one."""
    if not isinstance(value, str):
        return value
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def _row(result, spec: SweepSpec, wall: dict) -> TrialRow:
    metrics = result.metrics or {}
    frame = result.metrics_dataframe
    trial_id = metrics.get("trial_id") or Path(result.path).name
    config = {k: _display(v) for k, v in (result.config or {}).items()}
    best = best_epoch = None
    epochs = int(metrics.get("epochs_seen", 0) or 0)
    training = None
    resumed = 0
    if frame is not None and spec.metric in frame:
        values = [
            (float(v), int(e))
            for v, e in zip(frame[spec.metric], frame["epochs_seen"])
            if v is not None and math.isfinite(float(v))
        ]
        if values:
            pick = min if spec.mode == "min" else max
            best, best_epoch = pick(values, key=lambda pair: pair[0])
        epochs = int(frame["epochs_seen"].max())
        if "seconds_per_epoch" in frame:
            training = float(frame["seconds_per_epoch"].fillna(0).sum())
        if "resumed_from" in frame:
            resumed = int(frame["resumed_from"].max())
    if result.error is not None:
        lines = str(result.error).strip().splitlines() or [type(result.error).__name__]
        status, reason = "failed", lines[-1]
    elif metrics.get("sweep_status") == "diverged":
        status, reason = "diverged", str(metrics.get("sweep_reason", ""))
    elif epochs >= spec.epochs:
        # Before the "done" test: a trial restored from its last epoch's
        # checkpoint ends without reporting again, so Ray Tune never marks it done.
        status, reason = "completed", ""
    elif not metrics.get("done"):
        status, reason = "unfinished", "the sweep stopped before this trial ended (--resume)"
    elif epochs == 0:
        status, reason = "not run", "no epoch finished"
    else:
        status, reason = "stopped early", f"{spec.scheduler} stopped it after epoch {epochs}"
    return TrialRow(
        trial_id=trial_id,
        config=config,
        status=status,
        best=best,
        best_epoch=best_epoch,
        epochs=epochs,
        reason=reason,
        resumed_from=resumed,
        seconds=wall.get(trial_id),
        trial_seconds=metrics.get("time_total_s"),
        training_seconds=training,
    )


def _sorted(rows: list, mode: str) -> list:
    sign = 1 if mode == "min" else -1

    def key(row):
        usable = row.best is not None and row.status in ("completed", "stopped early")
        return (not usable, sign * row.best if row.best is not None else 0.0, row.trial_id)

    return sorted(rows, key=key)


def write_results(rows: list, out_dir: Path, spec: SweepSpec, plan: TrialPlan) -> dict:
    """Write results.csv, results.json and best.yaml; return their paths."""
    keys = [d.key for d in spec.dimensions]
    columns = ["trial_id", *keys, spec.metric, "best_epoch", "epochs", "status", "reason"]
    csv_path = out_dir / "results.csv"
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(columns)
    for row in rows:
        values = [row.config.get(k, "") for k in keys]
        writer.writerow(
            [row.trial_id, *values, row.best, row.best_epoch, row.epochs, row.status, row.reason]
        )
    atomic_write_text(csv_path, table.getvalue())
    json_path = out_dir / "results.json"
    atomic_write_text(
        json_path,
        json.dumps(
            {"metric": spec.metric, "mode": spec.mode, "trials": [asdict(r) for r in rows]},
            indent=1,
            default=str,
        ),
    )
    files = {"csv": csv_path, "json": json_path}
    best = rows[0] if rows and rows[0].status in ("completed", "stopped early") else None
    if best is not None and best.best is not None:
        values = {k: v for k, v in best.config.items() if k in keys}
        threads = spec.cpus_per_trial
        env = " ".join(f"{k}={v}" for k, v in worker_env(threads).items())
        header = (
            f"# Best trial {best.trial_id} of the sweep {spec.path}: {spec.metric} "
            f"{best.best!r} at epoch {best.best_epoch} of {best.epochs}.\n"
            f"# Train it again with:  python scripts/train.py {out_dir / 'best.yaml'}\n"
            f"# (with {threads} BLAS thread(s), as in the trial, for the same numbers bit for "
            f"bit:  {env} python scripts/train.py ...)\n"
        )
        best_path = out_dir / "best.yaml"
        atomic_write_text(best_path, header + plan.trial_yaml(values))
        files["best_yaml"] = best_path
    return files


def _experiment_path(storage_path: str) -> str:
    """Where Ray Tune keeps the sweep's trials: a folder, or a URI on cloud storage."""
    if "://" in storage_path:
        return f"{storage_path.rstrip('/')}/{EXPERIMENT}"
    return str(Path(storage_path) / EXPERIMENT)


def _experiment_exists(experiment: str) -> bool:
    """Whether ``experiment`` (a folder, or a URI on cloud storage) holds anything
    but sweep.py's marker: trials, or files someone else put there."""
    if "://" not in experiment:
        folder = Path(experiment)
        if not folder.is_dir() or folder.is_symlink():
            return folder.exists() or folder.is_symlink()
        return any(entry.name != MARKER for entry in folder.iterdir())
    from pyarrow import fs  # Ray Tune reads and writes URIs through pyarrow too

    filesystem, path = fs.FileSystem.from_uri(experiment)
    if filesystem.get_file_info(path).type == fs.FileType.NotFound:
        return False
    listing = filesystem.get_file_info(fs.FileSelector(path))
    return any(info.base_name != MARKER for info in listing)


def _mark_experiment(experiment: str) -> None:
    """Make the trials folder with the marker that lets ``--restart`` delete it later."""
    if "://" not in experiment:
        Path(experiment).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(experiment) / MARKER, MARKER_TEXT)
        return
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(experiment)
    filesystem.create_dir(path, recursive=True)
    with filesystem.open_output_stream(f"{path}/{MARKER}") as stream:
        stream.write(MARKER_TEXT.encode())


def _is_marked(experiment: str) -> bool:
    """Whether ``experiment`` is a trials folder sweep.py made (a real folder with its marker)."""
    if "://" not in experiment:
        folder = Path(experiment)
        if folder.is_symlink() or not folder.is_dir():
            return False
        marker = folder / MARKER
        return marker.is_file() and not marker.is_symlink()
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(experiment)
    return filesystem.get_file_info(f"{path}/{MARKER}").type == fs.FileType.File


def _delete_experiment(experiment: str) -> None:
    """Delete a trials folder sweep.py made; refuse any other."""
    if not _is_marked(experiment):
        raise SweepError(
            f"{experiment} was not made by sweep.py (it holds no {MARKER} file), so --restart "
            "does not delete it; move it away or give another --out"
        )
    if "://" not in experiment:
        shutil.rmtree(experiment)
        return
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(experiment)
    filesystem.delete_dir(path)


def _recover_deleted_checkpoints(experiment: str) -> None:
    """Give each trial back the checkpoint its saved state names, if a newer one replaced it.

    Ray Tune keeps one checkpoint per trial: registering a trial's new
    checkpoint deletes the previous one at once, and the experiment state
    (which names each trial's latest checkpoint) is saved a moment later. A
    driver killed in between leaves a state naming a checkpoint that no
    longer exists, and Tune then fails that trial on ``--resume`` ("Could not
    recover from checkpoint as it does not exist on storage anymore"). The
    newer checkpoint is on storage, so it is moved to the name the state
    expects: the trial goes on from its newest epoch (its reports are keyed
    by ``epochs_seen``, not by Tune's iteration count).
    """
    from pyarrow import fs
    from ray import tune

    try:
        trials = tune.ExperimentAnalysis(experiment).trials
    except Exception as exc:  # Ray Tune's own files, unreadable: say which
        raise SweepError(
            f"cannot read Ray Tune's saved state of the sweep in {experiment} "
            f"({type(exc).__name__}: {exc}); it cannot be resumed (--restart deletes its "
            "trials and starts over)"
        ) from exc
    for trial in trials:
        checkpoint = trial.checkpoint
        if checkpoint is None:
            continue
        filesystem, wanted = checkpoint.filesystem, checkpoint.path
        if filesystem.get_file_info(wanted).type != fs.FileType.NotFound:
            continue
        folder, name = wanted.rsplit("/", 1)
        newer = sorted(
            info.path
            for info in filesystem.get_file_info(fs.FileSelector(folder))
            if info.type == fs.FileType.Directory
            and re.fullmatch(r"checkpoint_\d+", info.base_name)
            and info.base_name > name
        )
        if not newer:
            continue  # nothing newer to go on from: Ray Tune reports the trial failed
        try:
            filesystem.move(newer[-1], wanted)
        except (OSError, NotImplementedError) as exc:
            raise SweepError(
                f"trial {trial.trial_id}: its saved state names the deleted checkpoint {wanted}; "
                f"moving its newest one ({newer[-1]}) there failed ({exc}); move it by hand and "
                "resume again"
            ) from exc
        logger.warning(
            "trial %s: the sweep was stopped between saving a checkpoint and recording it; "
            "it goes on from its newest checkpoint (%s, moved to %s)",
            trial.trial_id,
            newer[-1],
            wanted,
        )


def _prepare_out_dir(
    spec: SweepSpec, out_dir: Path, experiment: str, resume: bool, restart: bool
) -> None:
    """Check that the sweep may start (or resume) here; clear old trials on ``restart``.

    Creates ``out_dir`` and, for a new sweep, writes its ``sweep.json``.
    Raises :class:`SweepError` when there is nothing to resume, when the
    files changed since the sweep started, or when a sweep is there already
    and neither ``resume`` nor ``restart`` is given.
    """
    manifest = _Manifest(out_dir)
    exists = _experiment_exists(experiment)
    if resume:
        if not exists:
            raise SweepError(f"there is no sweep to resume: {experiment} does not exist")
        changed = manifest.differences(spec)
        if changed:
            raise SweepError("; ".join(changed) + "; a resumed sweep must use the same files")
    elif exists:
        if not restart:
            raise SweepError(
                f"{experiment} holds a sweep already; continue it with --resume, or start over "
                "(deleting its trials) with --restart"
            )
        _delete_experiment(experiment)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            manifest.write(spec)
            _mark_experiment(experiment)
    except (OSError, ModelFileError) as exc:
        raise SweepError(f"cannot prepare the output folder {out_dir}: {exc}") from None


def _check_cpus(spec: SweepSpec, cpus: float) -> None:
    """Refuse a sweep none of whose trials could start on a cluster of ``cpus`` CPUs
    (Ray Tune would wait for them for ever)."""
    if spec.cpus_per_trial > cpus:
        raise SweepError(
            f"{spec.where.get('cpus_per_trial', spec.path)}: cpus_per_trial is "
            f"{spec.cpus_per_trial}, but the Ray cluster has {cpus:g} CPU(s), so no trial could "
            "start; lower cpus_per_trial, or run on a larger cluster (--num-cpus, --address)"
        )


def _tuner(
    spec: SweepSpec, plan: TrialPlan, experiment: str, storage_path: str, resume: bool, callbacks
):
    """The Ray Tune ``Tuner`` of the sweep (restored from ``experiment`` on
    ``resume``) and the callback that times its trials."""
    from ray import tune

    trainable = tune.with_resources(
        tune.with_parameters(run_trial, plan=plan), {"cpu": spec.cpus_per_trial}
    )
    timing, all_callbacks = _tune_callbacks(callbacks, plan.mlflow)
    if resume:
        _recover_deleted_checkpoints(experiment)
        tuner = tune.Tuner.restore(
            experiment, trainable=trainable, resume_unfinished=True, resume_errored=False
        )
        return tuner, timing
    tuner = tune.Tuner(
        trainable,
        param_space=_param_space(spec),
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            num_samples=spec.trials,
            scheduler=_scheduler(spec),
            reuse_actors=False,
        ),
        run_config=tune.RunConfig(
            name=EXPERIMENT,
            storage_path=storage_path,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=all_callbacks,
            verbose=0,
        ),
    )
    return tuner, timing


def run_sweep(
    spec: SweepSpec,
    out_dir,
    address: str | None = None,
    resume: bool = False,
    restart: bool = False,
    num_cpus: int | None = None,
    storage: str | None = None,
    temp_dir: str | None = None,
    callbacks=None,
    ray_log_level: int = logging.WARNING,
    mlflow: str | bool | None = None,
) -> SweepResult:
    """Run (or with ``resume``, continue) the sweep ``spec``; write and return its results.

    ``storage`` is where Ray Tune keeps trial checkpoints (default: the
    output folder); a cluster of several machines needs a folder they all
    see (NFS) or a cloud URI. ``callbacks`` are extra Ray Tune callbacks
    (a resumed sweep keeps the callbacks it was started with, as Ray Tune does).
    ``mlflow`` (True: MLflow's default store, or a tracking URI) logs each
    trial as a run of the experiment named after the sweep file.
    """
    out_dir = Path(out_dir).resolve()
    plan = make_plan(spec)
    if mlflow is not None and mlflow is not False:
        from pylearn_vae.train_extensions.mlflow import shared_store

        uri = None if mlflow is True else mlflow
        plan = dataclasses.replace(plan, mlflow=shared_store(uri, Path(spec.path).stem))
    storage_path = storage or str(out_dir)
    experiment = _experiment_path(storage_path)
    if not out_dir.is_dir():
        try:
            out_dir.mkdir(parents=True)
        except OSError as exc:
            raise SweepError(f"cannot make the output folder {out_dir}: {exc.strerror}") from None
    try:
        with locks.hold([out_dir / "sweep.json"]):  # one sweep at a time per folder
            return _run_sweep(
                spec,
                out_dir,
                plan,
                (experiment, storage_path),
                (resume, restart),
                (address, num_cpus, temp_dir, ray_log_level),
                callbacks,
            )
    except (OutputInUse, ModelFileError) as exc:
        raise SweepError(str(exc)) from None


def _run_sweep(spec, out_dir, plan, storage, how, ray_settings, callbacks) -> SweepResult:
    """:func:`run_sweep` once it holds the output folder's lock."""
    experiment, storage_path = storage
    resume, restart = how
    address, num_cpus, temp_dir, ray_log_level = ray_settings
    _prepare_out_dir(spec, out_dir, experiment, resume, restart)

    import ray

    timings: dict = {}
    start = time.monotonic()
    started_here = start_ray(address, num_cpus, spec.cpus_per_trial, temp_dir, ray_log_level)
    timings["ray_start_seconds"] = time.monotonic() - start
    try:
        _check_cpus(spec, ray.cluster_resources().get("CPU", 0))
        start = time.monotonic()
        check_nodes(plan)
        timings["node_check_seconds"] = time.monotonic() - start
        tuner, timing = _tuner(spec, plan, experiment, storage_path, resume, callbacks)
        start = time.monotonic()
        with contextlib.redirect_stdout(_LogLines()):
            grid = tuner.fit()
        timings["fit_seconds"] = time.monotonic() - start
    finally:
        if started_here:
            ray.shutdown()
    rows = _sorted([_row(result, spec, timing.seconds) for result in grid], spec.mode)
    try:
        files = write_results(rows, out_dir, spec, plan)
    except ModelFileError as exc:
        raise SweepError(
            f"the sweep finished but its results could not be written: {exc}"
        ) from None
    best = rows[0] if "best_yaml" in files else None
    unfinished = sum(row.status == "unfinished" for row in rows)
    return SweepResult(rows, best, out_dir, unfinished, files, timings)
