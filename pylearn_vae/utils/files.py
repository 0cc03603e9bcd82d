"""Files written whole or not at all, and paths checked before they are opened.

:func:`atomic_path` / :func:`atomic_write` write to a temporary file in the
target's folder, flush and fsync it, and rename it over the target: a crash
or a full disk mid-write leaves the previous file intact.
:func:`check_regular_file` refuses FIFOs, devices and folders before anything
opens them (reading a FIFO can block for ever, reading ``/dev/zero`` never
ends).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from pylearn_vae.errors import ModelFileError

__all__ = [
    "ModelFileError",
    "atomic_path",
    "atomic_write",
    "check_regular_file",
    "regular_file_problem",
]


def regular_file_problem(path) -> str | None:
    """What stops ``path`` from being read as a regular file, or None.

    The answer completes "<path> ...": "does not exist", "cannot be read:
    ...", "is a FIFO (named pipe)", "is a device", "is a directory", ...
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device"
    if stat.S_ISSOCK(mode):
        return "is a socket"
    return "is not a regular file"


def check_regular_file(path, what: str = "file") -> None:
    """Raise :class:`ModelFileError` unless ``path`` is an existing regular file.

    ``what`` names the file in the message ("model file", "checkpoint file").
    """
    problem = regular_file_problem(path)
    if problem is not None:
        raise ModelFileError(f"{what} {path} {problem}; give the path of a regular file")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    On any error the temporary file is removed and the previous ``path`` is
    left as it was; an ``OSError`` becomes a :class:`ModelFileError` saying
    what happened (a full disk is named as such).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ModelFileError(f"cannot save {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            raise ModelFileError(
                f"could not save {path}: {reason}; the previous file (if any) is unchanged"
            ) from exc
        raise
    _fsync_folder(folder)


def _fsync_folder(folder) -> None:
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def atomic_write(path, write) -> None:
    """Call ``write(file)`` on a temporary binary file, then rename it to ``path``.

    See :func:`atomic_path` for the guarantees.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
