"""The CPUs a process may use, child processes that leave a Ctrl-C to the
program that started them, and stop signals that end a program even while
native code holds its main thread."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

__all__ = [
    "usable_cpus",
    "children_ignore_interrupts",
    "stopped_even_in_native_code",
    "note_stop_handled",
]

#: Signals that stop a program.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

#: Seconds a stop signal may wait for the interpreter to run its handler.
GRACE_SECONDS = 3.0

_handled = threading.Event()


def note_stop_handled() -> None:
    """Called first by every Python handler of a stop signal: the interpreter
    is in control and the program stops its own way (see
    :func:`stopped_even_in_native_code`)."""
    _handled.set()


def usable_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def children_ignore_interrupts():
    """Processes started inside this block ignore SIGINT for their whole life.

    A Ctrl-C reaches the terminal's whole process group: helpers (evaluation
    workers, Ray's processes) must not answer it themselves (a worker
    interrupted while importing prints a traceback; a Ray driver whose
    raylet died under it may crash at exit); the program stops them itself.
    An ignored signal stays ignored through ``exec`` (Python then installs no
    handler of its own). The program's own SIGINT is held pending while the
    block runs (a blocked signal is never discarded) and delivered to its
    handler at the end, not lost.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # (signal handlers can only be changed on the main thread)
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextlib.contextmanager
def stopped_even_in_native_code(message, grace: float = GRACE_SECONDS):
    """While inside (main thread only): a stop signal whose Python handler has
    not run ``grace`` seconds after the signal arrived ends the process.

    Python runs a signal handler only between two bytecodes of the main
    thread, so a long native call (LLVM optimising a large graph's code can
    take minutes) would keep a program deaf to Ctrl-C and SIGTERM. The
    signal module writes each signal's number to a wake-up pipe the moment it
    arrives; a watcher thread reads it and, when no handler has called
    :func:`note_stop_handled` in time, writes ``message(signum)`` on standard
    error and exits with status 128 + the signal's number. (The watcher
    runs while the native code lets go of the GIL, as LLVM's calls through
    ctypes do; code that keeps it stops every thread.) Nothing being
    written is cut short by it: the handlers of a program that writes files
    run between bytecodes, and files are replaced atomically. Helper
    processes end with their parent (see
    :func:`pylearn_vae.speedups.support.start_helper`).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except (ValueError, OSError):  # (not possible here: no watcher)
        os.close(read_end)
        os.close(write_end)
        yield
        return
    _handled.clear()
    watcher = threading.Thread(
        target=_watch, args=(read_end, message, grace), name="stop-watcher", daemon=True
    )
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        os.close(write_end)  # (the watcher reads the end of the pipe and returns)
        watcher.join(timeout=grace + 1)


def _watch(read_end: int, message, grace: float) -> None:
    # (the signals are for the main thread: one delivered to this thread while
    # the main thread blocks it would meet that moment's handler, not wait)
    signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS))
    try:
        while True:
            data = os.read(read_end, 1)
            if not data:
                return
            signum = data[0]
            if signum not in STOP_SIGNALS:
                continue
            if _handled.wait(grace):
                _handled.clear()
                continue
            try:
                sys.stderr.write(message(signum) + "\n")
                sys.stderr.flush()
            finally:
                os._exit(128 + signum)
    finally:
        os.close(read_end)
