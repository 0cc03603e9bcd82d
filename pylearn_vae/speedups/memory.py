"""Allocator settings for a process whose main job is training or evaluating.

A compiled training or monitoring function allocates the same large
temporaries (up to tens of megabytes) on every call. With its default
settings glibc's ``malloc`` serves such blocks with fresh ``mmap`` calls, or
returns freed heap memory to the system, so every call pays page faults and
the kernel's zero-filling again, which slows monitoring passes most
(docs/performance.md).
:func:`reuse_freed_memory` keeps freed memory in the process instead.
The command-line programs call it at start; a library user may call it too.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["reuse_freed_memory"]

# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LIMIT = 1 << 30  # blocks up to 1 GiB come from the reused heap

_applied: bool | None = None


def reuse_freed_memory() -> bool:
    """Make glibc's ``malloc`` reuse freed memory rather than return it to the system.

    Blocks up to 1 GiB are taken from the heap instead of separate ``mmap``
    calls, and free memory at the top of the heap is kept unless more than
    1 GiB of it accumulates. The resident size of the process then stays
    near its peak instead of shrinking between calls (the peak itself does
    not grow). Idempotent; returns whether the settings are in effect (False
    where the C library is not glibc, which is left alone).
    """
    global _applied
    if _applied is None:
        _applied = False
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
            mallopt = getattr(libc, "mallopt", None) if libc is not None else None
            gnu = getattr(libc, "gnu_get_libc_version", None) if libc is not None else None
        except OSError:
            mallopt = gnu = None
        if mallopt is not None and gnu is not None:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            _applied = bool(
                mallopt(_M_TRIM_THRESHOLD, _LIMIT) and mallopt(_M_MMAP_THRESHOLD, _LIMIT)
            )
    return _applied
