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
import os
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path

__all__ = ["main", "train_environ", "checkpoint_path_for"]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NUMERICAL = 3
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


def train_environ(config: str) -> dict[str, str]:
    """The ``PYLEARN2_TRAIN_*`` variables Pylearn2's train.py published."""
    full_stem = config[: -len(".yaml")] if config.endswith(".yaml") else config
    directory = os.path.dirname(config)
    return {
        "PYLEARN2_TRAIN_FILE_FULL_STEM": full_stem,
        "PYLEARN2_TRAIN_FILE_STEM": os.path.basename(full_stem),
        "PYLEARN2_TRAIN_FILE_NAME": os.path.basename(config),
        "PYLEARN2_TRAIN_BASE_NAME": os.path.basename(config),
        "PYLEARN2_TRAIN_DIR": directory + "/" if directory else "",
    }


def checkpoint_path_for(config: str) -> str:
    return train_environ(config)["PYLEARN2_TRAIN_FILE_FULL_STEM"] + "_checkpoint.h5"


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
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    return parser


def _fail(message: str, code: int = EXIT_FAILURE) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return code


def _load(config: str):
    from pylearn_vae.config import legacy, yaml_parse

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", legacy.LegacyNameWarning)
        obj = yaml_parse.load_path(config, environ=train_environ(config))
    for warning in caught:
        if issubclass(warning.category, legacy.LegacyNameWarning):
            print(f"notice: {warning.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return obj


def _unfinished_run(config: str, checkpoint: str) -> str | None:
    """Why a fresh run of ``config`` would replace an unfinished run's files, or None."""
    from pylearn_vae.persistence import ModelFileError, read_checkpoint_info

    if not os.path.lexists(checkpoint):
        return None
    try:
        info = read_checkpoint_info(checkpoint)
    except ModelFileError as exc:
        return f"{checkpoint} exists but cannot be read ({exc})"
    if info["finished"]:
        return None
    return f"{checkpoint} holds an unfinished run ({info['epochs_seen']} epochs done)"


def _apply_message(config: str, state: dict, changes: list) -> str:
    applied = state.get("applied", [])
    lines = [f"applied from {config}: {line}" for line in applied]
    applied_paths = {line.split(":", 1)[0] for line in applied}
    others = [path for path, _, _ in changes if path not in applied_paths]
    if others:
        lines.append(
            f"other changes take effect as {config} says (objects are rebuilt from it; their "
            f"saved state is restored): {', '.join(p or '<root>' for p in others)}"
        )
    return "\n".join(lines)


class _Exit(Exception):
    """Ends the program: ``message`` on standard error, then exit ``status``."""

    def __init__(self, message: str, status: int = EXIT_FAILURE, error: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.error = error

    def report(self) -> int:
        if self.error:
            return _fail(str(self), self.status)
        print(str(self), file=sys.stderr, flush=True)
        return self.status


def _check_arguments(args) -> None:
    if args.epochs is not None and args.epochs < 0:
        raise _Exit(f"--epochs must be >= 0, got {args.epochs}", EXIT_USAGE)
    if args.checkpoint_every < 0:
        raise _Exit(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}", EXIT_USAGE)
    if args.force and not args.resume:
        raise _Exit("--force only makes sense with --resume", EXIT_USAGE)
    if args.restart and args.resume:
        raise _Exit("--restart and --resume contradict each other; choose one", EXIT_USAGE)


def _read_config(config: str) -> str:
    if not Path(config).is_file():
        problem = "is not a regular file" if os.path.exists(config) else "does not exist"
        raise _Exit(f"configuration file {config} {problem}", EXIT_USAGE)
    try:
        return Path(config).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _Exit(f"{config} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _resume_changes(args, config: str, config_text: str, checkpoint: str) -> list:
    """Check that the run may start (fresh, over an unfinished run, or resumed) and
    return the changes of a forced resume (``(path, old, new)`` triples)."""
    from pylearn_vae.config.compare import config_changes, config_differences
    from pylearn_vae.persistence import read_checkpoint_info

    unfinished = None if args.resume or args.restart else _unfinished_run(config, checkpoint)
    if unfinished:
        raise _Exit(
            f"{unfinished}; a new run would replace it and its best model. Continue it "
            f"with:\n  {_resume_hint(config)}\nor start over (replacing both) with:\n"
            f"  python scripts/train.py {config} --restart",
            EXIT_USAGE,
        )
    if not args.resume:
        return []
    if not Path(checkpoint).exists():
        raise _Exit(
            f"there is no checkpoint to resume from: {checkpoint} does not exist", EXIT_USAGE
        )
    info = read_checkpoint_info(checkpoint)
    if info["finished"]:
        raise _Exit(
            f"{config}: the run in {checkpoint} already finished "
            f"({info['epochs_seen']} epochs); nothing to do",
            0,
            error=False,
        )
    saved = info["config_yaml"]
    differences = (
        config_differences(saved, config_text, f"{checkpoint}:config_yaml") if saved else []
    )
    if differences and not args.force:
        listed = "\n  ".join(differences)
        raise _Exit(
            f"{config} differs from the configuration {checkpoint} was made with:\n  {listed}\n"
            "Resume anyway with --resume --force, or restore the original file.",
            EXIT_USAGE,
        )
    if not differences:
        return []
    return config_changes(saved, config_text, old_source=f"{checkpoint}:config_yaml")


def _build_train(args, config: str, config_text: str, checkpoint: str):
    from pylearn_vae.train import Train

    train = _load(config)
    if not isinstance(train, Train):
        raise _Exit(
            f"{config} describes a {type(train).__name__}, expected a pylearn_vae.train.Train"
        )
    if args.epochs is not None:
        from pylearn_vae.termination_criteria import EpochCounter

        train.algorithm.termination_criterion = EpochCounter(args.epochs, new_epochs=False)
    train.quiet = args.quiet
    train.config_text = config_text
    if hasattr(train.algorithm, "precompile"):
        from pylearn_vae.evaluation import usable_cpus

        # A first run compiles the monitoring function in a second process
        # while the training step compiles here: seconds saved where there
        # is a second CPU, a few lost where there is not.
        train.algorithm.precompile = usable_cpus() > 1
    if args.checkpoint_every:
        train.checkpoint_path = checkpoint
        train.checkpoint_every = args.checkpoint_every
    return train


def _resume(train, config: str, checkpoint: str, changes: list) -> None:
    state = train.resume(checkpoint, overrides=changes)
    position = int(state["algorithm"]["resume_position"])
    print(
        f"resumed from {checkpoint} at epoch {train.model.monitor.get_epochs_seen()}"
        + (f", minibatch {position + 1}" if position else ""),
        file=sys.stderr,
        flush=True,
    )
    if changes:
        print(_apply_message(config, state, changes), file=sys.stderr, flush=True)


def _resume_hint(config: str) -> str:
    return f"python scripts/train.py {config} --resume"


def _failure(exc: BaseException, args, train, config: str, checkpoint: str) -> int:
    """The exit status and one-paragraph message for an exception out of training."""
    from pylearn_vae.training_algorithms.sgd import NumericalError, StopRequested

    if isinstance(exc, StopRequested):
        reason = train.algorithm.stop_requested if train is not None else "SIGINT"
        saved = (
            f"; checkpoint written to {checkpoint}; resume with:  {_resume_hint(config)}"
            if train and train.checkpoint_path
            else ""
        )
        return _fail(f"{exc}{saved}", EXIT_SIGNAL.get(reason, EXIT_FAILURE))
    if isinstance(exc, KeyboardInterrupt):
        return _fail("interrupted", EXIT_SIGNAL["SIGINT"])
    if isinstance(exc, NumericalError):
        kept = (
            f"the last good checkpoint {checkpoint} and the best model are unchanged. "
            if Path(checkpoint).exists()
            else ""
        )
        return _fail(
            f"training stopped: {exc}. Nothing was saved from the diverged state; {kept}"
            f"To continue, lower learning_rate in {config} and run:  "
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


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    config = args.config
    checkpoint = checkpoint_path_for(config)
    train = None
    previous = {}
    try:
        _check_arguments(args)
        from pylearn_vae.cli.common import prepare_process, show_package_log
        from pylearn_vae.ops.denormals import flushed_denormals

        prepare_process()
        show_package_log(quiet=args.quiet)
        config_text = _read_config(config)
        changes = _resume_changes(args, config, config_text, checkpoint)
        train = _build_train(args, config, config_text, checkpoint)
        for name in ("SIGINT", "SIGTERM"):
            previous[name] = signal.signal(
                getattr(signal, name),
                lambda signum, frame: train.request_stop(signal.Signals(signum).name),
            )
        start = time.time()
        print(
            f"compiling the training and monitoring functions for {config} "
            "(a first run compiles for ~20 s; later runs reuse the cache)...",
            file=sys.stderr,
            flush=True,
        )
        if args.resume:
            _resume(train, config, checkpoint, changes)
        with flushed_denormals():
            train.main_loop()
    except _Exit as stop:
        return stop.report()
    except (Exception, KeyboardInterrupt) as exc:  # every failure becomes one clear paragraph
        return _failure(exc, args, train, config, checkpoint)
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)
    saved = f"; model saved to {train.save_path}" if train.save_path else ""
    epochs = train.model.monitor.get_epochs_seen()
    print(
        f"finished {epochs} epoch{'' if epochs == 1 else 's'} in "
        f"{time.time() - start:.1f} s{saved}",
        file=sys.stderr,
    )
    return 0
