"""Helpers shared by the command-line programs."""

from __future__ import annotations

import sys

__all__ = ["CLIError", "load_model", "prepare_process", "run"]


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def prepare_process() -> None:
    """Process settings for a program whose main job is training or evaluating:
    freed memory stays in the process and Numba compiles at LLVM level 2
    (both explained where they are defined)."""
    from pylearn_vae.utils.compile import quicker_numba_compiles
    from pylearn_vae.utils.memory import reuse_freed_memory

    reuse_freed_memory()
    quicker_numba_compiles()


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
