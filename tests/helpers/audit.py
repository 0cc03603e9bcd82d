"""Record what code does while a file is loaded (Python audit events).

``sys.addaudithook`` cannot be undone, so one hook is installed when this
module is imported and records only inside :func:`recording`.
"""

from __future__ import annotations

import contextlib
import os
import sys

# Audit events that mean code acted on the system.
ACTIONS = frozenset(
    {
        "os.system",
        "subprocess.Popen",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.remove",
        "os.rename",
        "os.truncate",
        "shutil.copyfile",
        "socket.connect",
        "ctypes.dlopen",
        "webbrowser.open",
        "compile",
    }
)
_recording: list | None = None


def _audit(event: str, args) -> None:
    if _recording is None:
        return
    if event in ACTIONS:
        _recording.append((event, str(args[:1])))
    elif event == "open" and args and isinstance(args[0], str | bytes | os.PathLike):
        _recording.append(("open", os.fsdecode(args[0])))


sys.addaudithook(_audit)


@contextlib.contextmanager
def recording():
    """Collect ``(event, argument)`` pairs while the block runs."""
    global _recording
    _recording = events = []
    try:
        yield events
    finally:
        _recording = None


#: Files a load may open that hold nothing from outside: the process's own
#: memory map size (read by pylearn_vae.utils.limits for the build's budget).
OWN_STATE = ("/proc/self/statm",)


def outside_effects(events: list, allowed, secret: str = "secret") -> list:
    """Events other than opening ``allowed``, the process's own state (``OWN_STATE``),
    and Python importing its own modules."""
    return [
        (event, arg)
        for event, arg in events
        if not (
            event == "open"
            and (
                arg == str(allowed)
                or arg in OWN_STATE
                or arg.endswith((".py", ".pyc", ".so"))
                and secret not in arg
            )
        )
    ]
