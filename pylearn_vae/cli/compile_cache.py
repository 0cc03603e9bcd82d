"""The programs start even when PyTensor's compile cache cannot be written.

PyTensor keeps compiled code under its ``base_compiledir`` (``~/.pytensor``
unless ``PYTENSOR_FLAGS`` or a ``.pytensorrc`` says otherwise) and, from
version 3, creates ``<base_compiledir>/numba`` when its Numba backend is
imported: a folder that is read-only, a file, or on a full or broken disk
makes that import fail, and the value cannot be changed once PyTensor is
imported. So before anything imports PyTensor, :func:`use_writable_cache`
finds the folder PyTensor will use (the same sources, in the same order) and
tries to write in it; when it cannot, the program compiles into a temporary
folder for this run (removed at exit) and says so. Only the compile's time
is lost.
"""

from __future__ import annotations

import atexit
import configparser
import os
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = ["base_compiledir", "use_writable_cache"]


def _from_flags(flags: str) -> str | None:
    value = None
    for item in flags.split(","):
        key, sep, found = item.strip().partition("=")
        if sep and key.strip() in ("base_compiledir", "global__base_compiledir"):
            value = found.strip()
    return value


def _from_rc_files() -> str | None:
    files = [
        Path(name).expanduser()
        for name in os.environ.get("PYTENSORRC", "~/.pytensorrc").split(os.pathsep)
    ]
    parser = configparser.ConfigParser(
        {
            "USER": os.environ.get("USER", Path("~").expanduser().name),
            "LSCRATCH": os.environ.get("LSCRATCH", ""),
            "TMPDIR": os.environ.get("TMPDIR", ""),
            "TEMP": os.environ.get("TEMP", ""),
            "TMP": os.environ.get("TMP", ""),
            "PID": str(os.getpid()),
        }
    )
    try:
        parser.read([f for f in files if f.is_file()])
        return parser.get("global", "base_compiledir", fallback=None)
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None  # (PyTensor will report its own configuration's problem)


def base_compiledir() -> Path:
    """The ``base_compiledir`` PyTensor will use in this process (flags, then
    the ``.pytensorrc`` files, then ``$HOME/.pytensor``)."""
    value = _from_flags(os.environ.get("PYTENSOR_FLAGS", "")) or _from_rc_files()
    if value:
        return Path(value).expanduser()
    home = os.environ.get("HOME")
    return (Path(home) if home is not None else Path.home()) / ".pytensor"


def _problem(folder: Path) -> str | None:
    """Why PyTensor could not write its cache in ``folder``, or None."""
    try:
        (folder / "numba").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def use_writable_cache() -> Path | None:
    """Point PyTensor at a temporary cache when its own cannot be written.

    Returns the temporary folder, or None when the cache is usable (or
    PyTensor is already imported, when nothing can be changed).
    """
    if "pytensor" in sys.modules:
        return None
    folder = base_compiledir()
    problem = _problem(folder)
    if problem is None:
        return None
    from pylearn_vae.text import escape

    temporary = Path(tempfile.mkdtemp(prefix="pylearn_vae-compile-cache-"))
    atexit.register(shutil.rmtree, temporary, ignore_errors=True)
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    os.environ["PYTENSOR_FLAGS"] = ",".join(filter(None, [flags, f"base_compiledir={temporary}"]))
    print(
        f"warning: PyTensor's compile cache {escape(str(folder))} cannot be written "
        f"({escape(problem)}); compiling into {temporary} for this run (make the folder "
        "writable, or set PYTENSOR_FLAGS=base_compiledir=DIR)",
        file=sys.stderr,
        flush=True,
    )
    return temporary
