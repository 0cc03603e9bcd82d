"""``scripts/train.py``: train the object described by a YAML file.

Writes ``${PYLEARN2_TRAIN_FILE_FULL_STEM}_checkpoint.h5`` after every epoch
(``--checkpoint-every N`` to thin it out); ``--resume`` continues from it
exactly. SIGINT and SIGTERM stop at the next minibatch boundary, write a
checkpoint and exit non-zero. A run without ``--resume`` next to an
unfinished run's checkpoint is refused unless ``--restart`` says to start
over.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path

from pylearn_vae.cli.common import (
    CLIError,
    add_mlflow_flag,
    check_path_flag,
    interrupted,
    mlflow_flag_problem,
    program,
    say,
)
from pylearn_vae.errors import Terminated
from pylearn_vae.text import escape
from pylearn_vae.utils.processes import note_stop_handled

__all__ = ["main"]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NUMERICAL = 3
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}


def _add_tracker_flags(parser) -> None:
    """``--tensorboard DIR`` and ``--mlflow [URI]``."""
    parser.add_argument(
        "--tensorboard",
        default=None,
        metavar="DIR",
        help="also write every monitor channel and the YAML as TensorBoard events to the folder "
        'DIR (made if missing; needs the [tensorboard] extra: pip install -e ".[tensorboard]")',
    )
    add_mlflow_flag(
        parser,
        "the run (the YAML's parameters, every monitor channel per epoch, the saved model files)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Train the model described by a Pylearn2-style YAML file "
        "(!obj:pylearn_vae... or !obj:pylearn2... names).",
    )
    parser.add_argument("config", help="YAML file describing a pylearn_vae.train.Train object")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="train this many epochs (overrides the termination criterion)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="do not print the per-epoch monitor report"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from CONFIG's checkpoint (<stem>_checkpoint.h5)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="with --resume: accept a YAML that differs from the checkpoint's (a changed "
        "learning_rate or init_momentum is applied to the resumed state)",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="start over although an unfinished run's checkpoint exists (its checkpoint and "
        "best model will be replaced)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=1,
        metavar="N",
        help="write the checkpoint every N epochs (default 1; 0: never)",
    )
    _add_tracker_flags(parser)
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    return parser


def _fail(message: str, code: int = EXIT_FAILURE) -> int:
    say(f"error: {message}", file=sys.stderr, flush=True)
    return code


@contextlib.contextmanager
def _notices():
    """Show Pylearn2 names the YAML uses as one-line notices (other warnings pass)."""
    from pylearn_vae.config import legacy

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", legacy.LegacyNameWarning)
        yield
    for warning in caught:
        if issubclass(warning.category, legacy.LegacyNameWarning):
            say(f"notice: {warning.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )


def _request_stop(train, signum: int) -> None:
    """A stop signal: during training, a stop at the next minibatch boundary
    (with a checkpoint); before it (set-up, a compile that may take minutes),
    at once, as nothing has been trained that a checkpoint would keep."""
    note_stop_handled()
    if not train.training_started:
        raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)
    train.request_stop(signal.Signals(signum).name)


@contextlib.contextmanager
def _stopping_at_signals(train):
    """SIGINT, SIGTERM and SIGHUP ask ``train`` to stop at the next minibatch boundary."""
    previous = {}
    try:
        for name in EXIT_SIGNAL:
            previous[name] = signal.signal(
                getattr(signal, name),
                lambda signum, frame: _request_stop(train, signum),
            )
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)


def _refusal(exc, config: str) -> int:
    """The exit status and message for a run that :class:`~pylearn_vae.job.TrainingJob`
    refused to start."""
    from pylearn_vae.job import ConfigChanged, ConfigFileError, RunFinished, UnfinishedRun

    if isinstance(exc, RunFinished):
        say(escape(str(exc)), file=sys.stderr, flush=True)
        return 0
    if isinstance(exc, ConfigFileError):
        return _fail(str(exc))
    message = escape(str(exc))  # (it names paths: no line of it may be forged)
    if isinstance(exc, ConfigChanged):  # one escaped line per difference
        message = "\n  ".join([escape(exc.summary), *(escape(d) for d in exc.differences)])
    if isinstance(exc, UnfinishedRun):
        message += (
            f". Continue it with:\n  {_resume_hint(config)}\nor start over (replacing both) "
            f"with:\n  python scripts/train.py {escape(config)} --restart"
        )
    elif isinstance(exc, ConfigChanged):
        message += "\nResume anyway with --resume --force, or restore the original file."
    return _fail(message, EXIT_USAGE)


def _usage_problem(args) -> str | None:
    if args.epochs is not None and args.epochs < 0:
        return f"--epochs must be >= 0, got {args.epochs}"
    if args.checkpoint_every < 0:
        return f"--checkpoint-every must be >= 0, got {args.checkpoint_every}"
    if args.force and not args.resume:
        return "--force only makes sense with --resume"
    if args.restart and args.resume:
        return "--restart and --resume contradict each other; choose one"
    try:
        check_path_flag("--tensorboard", args.tensorboard)
    except CLIError as exc:
        return str(exc)
    if mlflow_flag_problem(args.mlflow):
        return mlflow_flag_problem(args.mlflow)
    return None


def _report_resume(config: str, checkpoint: str, resumed) -> None:
    say(
        f"resumed from {escape(checkpoint)} at epoch {resumed.epochs_seen}"
        + (f", minibatch {resumed.position + 1}" if resumed.position else ""),
        file=sys.stderr,
        flush=True,
    )
    lines = [f"applied from {config}: {line}" for line in resumed.applied]
    if resumed.unapplied:
        lines.append(
            f"other changes take effect as {config} says (objects are rebuilt from it; their "
            f"saved state is restored): {', '.join(p or '<root>' for p in resumed.unapplied)}"
        )
    if lines:
        say("\n".join(lines), file=sys.stderr, flush=True)


def _resume_hint(config: str) -> str:
    return f"python scripts/train.py {escape(config)} --resume"


def _failure(exc: BaseException, args, job) -> int:
    """The exit status and one-paragraph message for an exception out of training
    (``job``: the :class:`~pylearn_vae.job.TrainingJob`, None if it was not made)."""
    from pylearn_vae.training_algorithms.sgd import NumericalError, StopRequested

    config = args.config
    train = job.train if job is not None else None
    checkpoint = escape(job.checkpoint_path) if job is not None else ""
    if isinstance(exc, StopRequested):
        reason = train.algorithm.stop_requested if train is not None else "SIGINT"
        saved = ""
        if train is not None and train.checkpointed:
            saved = f"; checkpoint written to {checkpoint}; resume with:  {_resume_hint(config)}"
        elif train is not None and job.resume and Path(job.checkpoint_path).exists():
            saved = (
                f"; the checkpoint {checkpoint} is unchanged; resume with:  {_resume_hint(config)}"
            )
        return _fail(f"{escape(str(exc))}{saved}", EXIT_SIGNAL.get(reason, EXIT_FAILURE))
    if isinstance(exc, KeyboardInterrupt):
        note = ""
        if train is not None and not train.training_started:
            note = " before training started"
            if job.resume and Path(job.checkpoint_path).exists():
                note += (
                    f"; the checkpoint {checkpoint} is unchanged; resume with:  "
                    f"{_resume_hint(config)}"
                )
        return interrupted(exc, note)
    if isinstance(exc, NumericalError):
        kept = (
            f"the last good checkpoint {checkpoint} and the best model are unchanged. "
            if job is not None and Path(job.checkpoint_path).exists()
            else ""
        )
        return _fail(
            f"training stopped: {escape(str(exc))}. Nothing was saved from the diverged "
            f"state; {kept}To continue, lower learning_rate in {escape(config)} and run:  "
            f"{_resume_hint(config)} --force",
            EXIT_NUMERICAL,
        )
    if args.debug:
        traceback.print_exception(exc)
    message = str(exc) or type(exc).__name__
    if not isinstance(exc, (ValueError, FileNotFoundError, OSError, FloatingPointError, TypeError)):
        message = f"{type(exc).__name__}: {message}"
    return _fail(
        message + ("" if args.debug else "\n(run with --debug to see the Python traceback)")
    )


def _tracking_failure(exc, config: str, job) -> int:
    """The message for a tracker (MLflow) that failed: a checkpoint written is
    kept; a run that finished (the tracker failed as it closed) needs no resume."""
    train = job.train if job is not None else None
    if train is not None and train.finished:
        saved = f" (model saved to {escape(train.save_path)})" if train.save_path else ""
        return _fail(f"{escape(str(exc))}; the training itself finished{saved}")
    # (a checkpoint this session wrote, or the one a resumed run started from;
    # not the one --restart was about to replace)
    kept = (
        train is not None
        and Path(job.checkpoint_path).exists()
        and (train.checkpointed or bool(job.resume))
    )
    resume = f"; the checkpoint is kept, resume with:  {_resume_hint(config)}" if kept else ""
    return _fail(escape(str(exc)) + resume)


@program
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    config = args.config
    problem = _usage_problem(args)
    if problem:
        return _fail(problem, EXIT_USAGE)
    from pylearn_vae.cli.common import show_package_log
    from pylearn_vae.errors import TrackingError
    from pylearn_vae.job import ConfigFileError, JobRefused, MissingExtraError, TrainingJob

    job = None
    try:
        job = TrainingJob(
            config,
            epochs=args.epochs,
            quiet=args.quiet,
            resume=args.resume,
            force=args.force,
            restart=args.restart,
            checkpoint_every=args.checkpoint_every,
            tensorboard=args.tensorboard,
            mlflow=args.mlflow,
        )
        show_package_log(quiet=args.quiet)
        with _notices():
            train = job.prepare()
        with _stopping_at_signals(train):
            start = time.time()
            say(
                f"compiling the training and monitoring functions for {escape(config)} "
                "(a first run compiles for ~20 s; later runs reuse the cache)...",
                file=sys.stderr,
                flush=True,
            )
            job.run(on_resumed=lambda where: _report_resume(config, job.checkpoint_path, where))
    except (JobRefused, ConfigFileError) as exc:
        return _refusal(exc, config)
    except MissingExtraError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except TrackingError as exc:
        return _tracking_failure(exc, config, job)
    except (Exception, KeyboardInterrupt) as exc:  # every failure becomes one clear paragraph
        return _failure(exc, args, job)
    saved = f"; model saved to {escape(train.save_path)}" if train.save_path else ""
    epochs = train.model.monitor.get_epochs_seen()
    say(
        f"finished {epochs} epoch{'' if epochs == 1 else 's'} in "
        f"{time.time() - start:.1f} s{saved}",
        file=sys.stderr,
    )
    return 0
