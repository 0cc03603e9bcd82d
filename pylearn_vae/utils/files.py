"""The package's one writer, and paths checked before they are opened.

Every file a program or benchmark writes goes through :func:`atomic_path`
(or :func:`atomic_write` / :func:`atomic_write_text`), which

* writes to a temporary file in the target's folder, flushes and fsyncs it,
  and renames it over the target: a crash, a signal or a full disk mid-write
  leaves the previous file intact;
* refuses, before writing anything, a target that exists and is not a
  regular file (a folder, FIFO, device or socket), so that
  ``--json /dev/null`` never replaces a device node;
* replaces a symbolic link at the target as a link: the link itself becomes
  the new file, and whatever it points to is never opened or changed;
* keeps the permission bits (and, when run as root, the owner) of the
  regular file it replaces; a new file gets the usual ``0o666 & ~umask``.

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
from pylearn_vae.text import escape

__all__ = [
    "ModelFileError",
    "atomic_path",
    "atomic_write",
    "atomic_write_text",
    "check_output_folder",
    "check_output_path",
    "check_path_name",
    "check_regular_file",
    "read_text_file",
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
    return f"is {_kind(mode)}"


def check_regular_file(path, what: str = "file") -> None:
    """Raise :class:`ModelFileError` unless ``path`` is an existing regular file.

    ``what`` names the file in the message ("model file", "checkpoint file").
    """
    problem = regular_file_problem(path)
    if problem is not None:
        raise ModelFileError(f"{what} {path} {problem}; give the path of a regular file")


def read_text_file(path, what: str = "file", limit: int = 16 << 20) -> str:
    """The UTF-8 text of the regular file ``path``, read in bounded time and memory.

    Opened without blocking and checked on the open file (a FIFO, device or
    folder is refused even if it replaced the file a moment before); at most
    ``limit`` bytes are read (a larger file is refused). Raises
    :class:`ModelFileError` naming ``what`` and ``path``.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        problem = (
            "does not exist" if exc.errno == errno.ENOENT else f"cannot be read: {exc.strerror}"
        )
        raise ModelFileError(f"{what} {path} {problem}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # (checked before wrapping: a folder cannot be)
            raise ModelFileError(f"{what} {path} is {_kind(mode)}; give the path of a regular file")
        with open(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ModelFileError(f"{what} {path} cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ModelFileError(f"{what} {path} is larger than {limit:,} bytes; refusing to read it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFileError(
            f"{what} {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _kind(mode: int) -> str:
    """What a file of ``mode`` is, for "<path> is ..." ("a FIFO (named pipe)", ...)."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _replaced_file(path: Path):
    """The ``lstat`` of what ``path`` names now (None if nothing), refusing what
    the writer must never replace."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ModelFileError(f"cannot save {path}: {exc.strerror or exc}") from None
    if stat.S_ISREG(found.st_mode) or stat.S_ISLNK(found.st_mode):
        return found
    raise ModelFileError(
        f"cannot save {path}: it is {_kind(found.st_mode)}, not a regular file; "
        "give the path of a regular file or a new name"
    )


def _take_over(tmp: str, replaced) -> None:
    """Give the temporary file the mode (and owner, as root) of the file it replaces."""
    if replaced is None or not stat.S_ISREG(replaced.st_mode):
        os.chmod(tmp, 0o666 & ~_umask())
        return
    if os.geteuid() == 0 and hasattr(os, "chown"):
        try:
            os.chown(tmp, replaced.st_uid, replaced.st_gid)
        except OSError:
            pass
    os.chmod(tmp, stat.S_IMODE(replaced.st_mode) & 0o777)


def check_output_path(path) -> None:
    """Raise :class:`ModelFileError` now if :func:`atomic_path` would refuse ``path``.

    Programs call it on their output flags before the work, so that a
    mistyped ``--json`` is refused at once rather than after an hour.
    """
    path = Path(path)
    _checked_target(path)
    # The writer's temporary sibling must be possible too (a name near the
    # 255-byte limit, a read-only or pseudo file system): make one now.
    os.unlink(_temporary_beside(path))


def check_output_folder(path, what: str = "output folder") -> None:
    """Make the folder ``path`` (and its parents) if it is missing, or raise
    :class:`ModelFileError` now if no file can be written into it.

    For programs and extensions that write many files of their own into a
    folder (event files): an existing ``path`` must be a folder or a link to
    one (a regular file, FIFO, device or socket is refused), and a file must
    be possible in it (a read-only or pseudo file system is refused). ``what``
    names the path in messages (``--tensorboard``).
    """
    check_path_name(path, what)
    shown = escape(os.fsdecode(path) if isinstance(path, bytes) else str(path))
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise ModelFileError(f"{what} {shown} cannot be used: {exc.strerror}") from None
    if mode is not None and not stat.S_ISDIR(mode):
        kind = "a regular file" if stat.S_ISREG(mode) else _kind(mode)
        raise ModelFileError(f"{what} {shown} is {kind}, not a folder; give the path of a folder")
    try:
        os.makedirs(path, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".write-check.", suffix=".tmp", dir=path)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ModelFileError(f"cannot write into {what} {shown}: {reason}") from None
    os.close(fd)
    os.unlink(tmp)


def check_path_name(path, what: str = "path") -> None:
    """Raise :class:`ModelFileError` if ``path`` holds a NUL character, which no
    file name can hold (the system call would only say "embedded null byte").

    ``what`` names the path in the message (``save_path``, ``--json``); the
    value is shown escaped.
    """
    text = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    if "\0" in text:
        raise ModelFileError(
            f"{what} '{escape(text)}' contains a NUL character (\\x00), which no file name can hold"
        )


def _checked_target(path: Path):
    """The ``lstat`` of what is at ``path`` (None if nothing), once its folder
    exists and it is something the writer may replace."""
    check_path_name(path, "output path")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ModelFileError(f"cannot save {path}: folder {folder} does not exist")
    return _replaced_file(path)


def _temporary_beside(path: Path) -> str:
    """A new empty temporary file in ``path``'s folder (the writer's sibling)."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ModelFileError(f"cannot save {path}: {reason}") from None
    os.close(fd)
    return tmp


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    See the module's docstring for what is refused and kept. On any error
    the temporary file is removed and the previous ``path`` is left as it
    was; an ``OSError`` becomes a :class:`ModelFileError` saying what
    happened (a full disk is named as such).
    """
    path = Path(path)
    replaced = _checked_target(path)
    tmp = _temporary_beside(path)
    try:
        _take_over(tmp, replaced)
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _replaced_file(path)  # (again: something may have been put there meanwhile)
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
    _fsync_folder(path.parent if str(path.parent) else Path("."))


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


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8 through :func:`atomic_write`."""
    data = text.encode("utf-8")
    atomic_write(path, lambda handle: handle.write(data))
