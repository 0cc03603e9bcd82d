"""PyTensor operations of pylearn_vae and their Numba, C and JAX code.

:func:`source_version` is part of the cache key of everything compiled from
this package's code, so an edit or an upgrade never runs stale compiled code.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

__all__ = ["source_digest", "source_version"]


@functools.cache
def source_digest(root: Path) -> str:
    """SHA-256 of the names and bytes of the Python files under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def source_version() -> int:
    """This folder's source digest as a 60-bit integer.

    PyTensor keys its on-disk caches of compiled Numba and C code by what the
    operations declare (a version number, a key), not by their code: with a
    hand-kept number, code edited without bumping it kept running the old
    compiled loops. Every cache key of code generated here includes this
    number instead.
    """
    return int(source_digest(Path(__file__).resolve().parent)[:15], 16)
