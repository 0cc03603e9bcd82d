"""``scripts/train.py``: train the object described by a YAML file."""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

__all__ = ["main", "train_environ"]


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
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    return parser


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return code


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.epochs is not None and args.epochs < 0:
        return _fail(f"--epochs must be >= 0, got {args.epochs}", 2)
    from pylearn_vae.config import legacy, yaml_parse
    from pylearn_vae.train import Train

    config = args.config
    if not Path(config).is_file():
        return _fail(f"configuration file {config} does not exist", 2)
    try:
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
        if not isinstance(obj, Train):
            return _fail(
                f"{config} describes a {type(obj).__name__}, expected a pylearn_vae.train.Train"
            )
        if args.epochs is not None:
            from pylearn_vae.termination_criteria import EpochCounter

            obj.algorithm.termination_criterion = EpochCounter(args.epochs)
        obj.quiet = args.quiet
        start = time.time()
        print(
            f"compiling the training and monitoring functions for {config} "
            "(a first run compiles for ~20 s; later runs reuse the cache)...",
            file=sys.stderr,
            flush=True,
        )
        obj.main_loop()
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:  # every failure becomes one clear paragraph
        if args.debug:
            traceback.print_exc()
        message = str(exc) or type(exc).__name__
        if not isinstance(
            exc, (ValueError, FileNotFoundError, OSError, FloatingPointError, TypeError)
        ):
            message = f"{type(exc).__name__}: {message}"
        return _fail(
            message + ("" if args.debug else "\n(run with --debug to see the Python traceback)")
        )
    monitor = obj.model.monitor
    saved = f"; model saved to {obj.save_path}" if obj.save_path else ""
    print(
        f"finished {monitor.get_epochs_seen()} epochs in {time.time() - start:.1f} s{saved}",
        file=sys.stderr,
    )
    return 0
