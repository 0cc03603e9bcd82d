"""The programs start even when PyTensor's compile cache cannot be written.

PyTensor keeps compiled code under its ``base_compiledir`` (``~/.pytensor``
unless ``PYTENSOR_FLAGS`` or a ``.pytensorrc`` says otherwise) and, from
version 3, creates ``<base_compiledir>/numba`` when its Numba backend is
imported: a folder that is read-only, a file, or on a full or broken disk
makes that import fail, and the value cannot be changed once PyTensor is
imported. So before anything imports PyTensor, :func:`use_writable_cache`
reads the settings as PyTensor will (``PYTENSOR_FLAGS`` split as PyTensor
splits it, then the ``.pytensorrc`` files) and tries to write in the
folders they name; when it cannot, the program compiles into a temporary
folder for this run (removed at exit) and says so. Only the compile's time
is lost. Settings PyTensor itself could not read (an unclosed quote, a
configuration file that is a FIFO, a device or not an INI file, a
``~user`` that does not exist) end the program with one line saying which.
"""

from __future__ import annotations

import atexit
import configparser
import os
import shlex
import shutil
import stat
import sys
import tempfile
from pathlib import Path

__all__ = ["base_compiledir", "flags", "use_writable_cache", "user_settings"]

#: The largest PyTensor configuration file read (PyTensor reads it whole).
MAX_RC_BYTES = 1 << 20


class _Unreadable(ValueError):
    """PyTensor's settings cannot be read as PyTensor would read them."""


def flags() -> dict[str, str]:
    """``PYTENSOR_FLAGS`` as PyTensor parses it (``shlex``, commas, the first ``=``)."""
    text = os.environ.get("PYTENSOR_FLAGS", "")
    splitter = shlex.shlex(text, posix=True)
    splitter.whitespace = ","
    splitter.whitespace_split = True
    try:
        pairs = [pair.strip() for pair in splitter]
    except ValueError as exc:
        raise _Unreadable(f"PYTENSOR_FLAGS cannot be read ({exc})") from None
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def _rc_files() -> list[Path]:
    return [
        Path(name).expanduser()
        for name in os.environ.get("PYTENSORRC", "~/.pytensorrc").split(os.pathsep)
    ]


def _rc_value(option: str) -> str | None:
    """``[global] option`` of the configuration files, as PyTensor reads it."""
    defaults = {
        "USER": os.environ.get("USER", Path("~").expanduser().name),
        "LSCRATCH": os.environ.get("LSCRATCH", ""),
        "TMPDIR": os.environ.get("TMPDIR", ""),
        "TEMP": os.environ.get("TEMP", ""),
        "TMP": os.environ.get("TMP", ""),
        "PID": str(os.getpid()),
    }
    files = []
    for path in _rc_files():
        try:
            found = os.stat(path)
        except (OSError, ValueError):
            continue  # (PyTensor skips what it cannot open)
        if not stat.S_ISREG(found.st_mode) or found.st_size > MAX_RC_BYTES:
            what = "not a regular file" if not stat.S_ISREG(found.st_mode) else "over 1 MiB"
            raise _Unreadable(f"PyTensor's configuration file {path} is {what}")
        files.append(path)
    parser, raw = configparser.ConfigParser(defaults), configparser.RawConfigParser()
    try:
        parser.read(files)
        raw.read(files)
        try:
            return parser.get("global", option, fallback=None)
        except configparser.InterpolationError:
            return raw.get("global", option, fallback=None)
    except (configparser.Error, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0]
        raise _Unreadable(f"PyTensor's configuration files cannot be read ({reason})") from None


def user_settings() -> dict[str, tuple[str, str]]:
    """Every setting given to PyTensor: name -> (value, where it is given).

    ``where`` is ``PYTENSOR_FLAGS`` or the configuration file; a flag wins
    over a file, and a later file over an earlier one, as in PyTensor. A
    ``[section] option`` of a file is PyTensor's ``section__option``.
    Raises ``ValueError`` when PyTensor could not read them (see
    :func:`use_writable_cache`).
    """
    found: dict[str, tuple[str, str]] = {}
    for path in _rc_files():
        try:
            if not path.is_file():
                continue
        except (OSError, ValueError):
            continue
        raw = configparser.RawConfigParser()
        raw.optionxform = str  # (names as written: floatX, not floatx)
        try:
            raw.read([path])
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise _Unreadable(f"PyTensor's configuration file {path} cannot be read") from exc
        for section in raw.sections():
            for option, value in raw.items(section):
                name = option if section == "global" else f"{section}__{option}"
                found[name] = (value, f"PyTensor's configuration file {path}")
    found.update((name, (value, "PYTENSOR_FLAGS")) for name, value in flags().items())
    return found


def _setting(option: str) -> str | None:
    return flags().get(option) or _rc_value(option)


def base_compiledir() -> Path:
    """The ``base_compiledir`` PyTensor will use in this process (flags, then
    the ``.pytensorrc`` files, then ``$HOME/.pytensor``)."""
    value = _setting("base_compiledir")
    if value:
        return Path(value).expanduser()
    home = os.environ.get("HOME")
    return (Path(home) if home is not None else Path.home()) / ".pytensor"


def _problem(folder: Path, subfolder: str | None = "numba") -> str | None:
    """Why PyTensor could not write its cache in ``folder``, or None."""
    try:
        target = folder / subfolder if subfolder else folder
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    except ValueError as exc:  # (a NUL character in the path)
        return str(exc)
    return None


def _fail(message: str) -> None:
    from pylearn_vae.text import escape

    print(f"error: {escape(message)}; fix or unset it", file=sys.stderr, flush=True)
    raise SystemExit(2)


def use_writable_cache() -> Path | None:
    """Point PyTensor at a temporary cache when its own cannot be written.

    Returns the temporary folder, or None when the cache is usable (or
    PyTensor is already imported, when nothing can be changed). Ends the
    program (status 2) when PyTensor's settings cannot be read at all.
    """
    if "pytensor" in sys.modules:
        return None
    try:
        folder = base_compiledir()
        compiledir = _setting("compiledir")
        problems = [(folder, _problem(folder))]
        if compiledir:
            problems.append((Path(compiledir).expanduser(), _problem(Path(compiledir), None)))
    except _Unreadable as exc:
        _fail(str(exc))
    except RuntimeError as exc:  # (Path.expanduser of a ~user that does not exist)
        _fail(f"PyTensor's compile cache setting cannot be read ({exc})")
    bad = [(where, why) for where, why in problems if why is not None]
    if not bad:
        return None
    from pylearn_vae.text import escape

    temporary = Path(tempfile.mkdtemp(prefix="pylearn_vae-compile-cache-"))
    atexit.register(shutil.rmtree, temporary, ignore_errors=True)
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    extra = [f"base_compiledir={temporary}"]
    if compiledir:
        extra.append(f"compiledir={temporary / 'compiledir'}")
    os.environ["PYTENSOR_FLAGS"] = ",".join(filter(None, [flags, *extra]))
    where, why = bad[0]
    print(
        f"warning: PyTensor's compile cache {escape(str(where))} cannot be written "
        f"({escape(why)}); compiling into {temporary} for this run (make the folder "
        "writable, or set PYTENSOR_FLAGS=base_compiledir=DIR)",
        file=sys.stderr,
        flush=True,
    )
    return temporary
