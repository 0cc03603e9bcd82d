"""The CPUs a process may use, and child processes that leave a Ctrl-C to the
program that started them."""

from __future__ import annotations

import contextlib
import os
import signal
import threading

__all__ = ["usable_cpus", "children_ignore_interrupts"]


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
