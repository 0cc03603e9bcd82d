"""A digest of the package's source, for the keys of everything cached on disk."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

__all__ = ["source_digest", "source_version", "PACKAGE_ROOT"]

#: The folder of the installed ``pylearn_vae`` package.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


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
    """The digest of this folder (the speed-ups' code) as a 60-bit integer.

    PyTensor keys its on-disk caches of compiled Numba and C code by what the
    operations declare (a version number, a key), not by their code: with a
    hand-kept number, code edited without bumping it kept running the old
    compiled loops. Every cache key of code generated here includes this
    number instead.
    """
    return int(source_digest(Path(__file__).resolve().parent)[:15], 16)
