"""Helpers shared by the command-line programs."""

from __future__ import annotations

import logging
import sys

from pylearn_vae.errors import CLIError

__all__ = ["CLIError", "load_model", "run", "show_package_log"]


class _ToStandardStream(logging.Handler):
    """Writes records to ``sys.stdout`` or ``sys.stderr`` as they are when the
    record comes (so a replaced stream, as in tests, is honoured)."""

    def __init__(self, stream_name: str, below_warning: bool) -> None:
        super().__init__()
        self.stream_name = stream_name
        self.below_warning = below_warning
        self.setFormatter(logging.Formatter("%(message)s"))

    def filter(self, record) -> bool:
        return (record.levelno < logging.WARNING) == self.below_warning

    def emit(self, record) -> None:
        try:
            stream = getattr(sys, self.stream_name)
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def show_package_log(quiet: bool = False) -> None:
    """Let the package's log reach the terminal: information (the monitor's
    reports) on standard output, unless ``quiet``; warnings and errors on
    standard error. The library itself prints nothing; the programs call this."""
    package = logging.getLogger("pylearn_vae")
    if not any(isinstance(h, _ToStandardStream) for h in package.handlers):
        package.addHandler(_ToStandardStream("stdout", below_warning=True))
        package.addHandler(_ToStandardStream("stderr", below_warning=False))
        package.propagate = False
    package.setLevel(logging.WARNING if quiet else logging.INFO)


def load_model(path: str):
    """Load a saved VAE, or raise :class:`CLIError` saying what is wrong."""
    from pylearn_vae import persistence
    from pylearn_vae.models.vae import VAE

    try:
        model = persistence.load(path)
    except (persistence.ModelFileError, OSError) as exc:
        raise CLIError(str(exc)) from None
    if not isinstance(model, VAE):
        raise CLIError(f"{path} holds a {type(model).__name__}, not a pylearn_vae VAE model")
    return model


def run(body, argv_args) -> int:
    """Run ``body(args)``, turning expected failures into one-line messages."""
    try:
        return body(argv_args) or 0
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
