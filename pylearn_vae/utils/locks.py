"""One run at a time per output file: advisory locks beside the files a run writes.

:func:`hold` takes an exclusive ``flock`` on ``.<name>.lock`` beside each
path (a checkpoint, a best model, ...) and writes the holder's process id,
command line and start time into it. A second run that would write the
same file finds the lock taken and stops at once with
:class:`~pylearn_vae.errors.OutputInUse` naming that process. The system
releases the lock when its process ends, however it ends (a crash, SIGKILL),
so a lock left behind never needs a flag to clear; the small lock files
themselves stay (deleting one while another process opens it would let two
runs hold "the" lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import sys
import time
from pathlib import Path

from pylearn_vae.errors import ModelFileError, OutputInUse

__all__ = ["OutputInUse", "hold", "lock_path"]


def lock_path(path) -> Path:
    """The lock file of the output ``path``: ``.<name>.lock`` in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it (bounded, one line, printable)."""
    try:
        data = os.pread(fd, 1024, 0).decode("utf-8", "replace")
    except OSError:
        return "another process"
    fields = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
    pid = fields.get("pid", "?")
    command = "".join(c if c.isprintable() else "?" for c in fields.get("command", "?"))[:200]
    started = fields.get("started", "?")
    return f"process {pid} ({command}), started {started}"


def _acquire(path: Path, wait: float) -> int:
    """Open and lock ``path``'s lock file (trying for ``wait`` seconds); return its descriptor."""
    lock = lock_path(path)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(lock, flags | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        raise ModelFileError(
            f"cannot lock {path}: {lock} cannot be opened ({exc.strerror or exc}); "
            "if it is a link or not a regular file, remove it"
        ) from None
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise ModelFileError(f"cannot lock {path}: {lock} is not a regular file; remove it")
        if found.st_nlink > 1:  # (writing the record would change the other name's file)
            raise ModelFileError(
                f"cannot lock {path}: {lock} is a hard link to another file; remove it"
            )
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)
    except BlockingIOError:
        try:
            raise OutputInUse(
                f"{path} is being written by another run: {_holder(fd)}; wait for it to "
                "finish or stop it (a stopped run's lock is released by the system)"
            ) from None
        finally:
            os.close(fd)
    except BaseException:
        os.close(fd)
        raise
    try:
        record = (
            f"pid={os.getpid()}\ncommand={' '.join(sys.argv)[:500]}\n"
            f"started={time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode("utf-8", "replace"), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def hold(paths, wait: float = 0.0):
    """Hold the locks of every path in ``paths`` (duplicates and ``None`` skipped)
    for the ``with`` block; raise :class:`OutputInUse` if another process holds
    one (after trying for ``wait`` seconds: a sweep trial's earlier attempt
    may still be ending)."""
    seen: list[Path] = []
    for path in paths:
        if path is None:
            continue
        path = Path(os.path.abspath(path))
        if path not in seen:
            seen.append(path)
    fds: list[int] = []
    try:
        for path in seen:
            fds.append(_acquire(path, wait))
        yield seen
    finally:
        for fd in fds:
            os.close(fd)  # (closing the descriptor releases its lock)
