"""A memory budget for building objects from a file's description.

A model file's YAML says how large the model is; building it allocates the
parameters before they can be compared with the arrays the file stores.
:func:`memory_budget` bounds what the build may allocate: on Linux it lowers
the process's address-space limit (``RLIMIT_AS``) to what is mapped now plus
the budget for the duration of the block, so an allocation beyond it fails
at once with ``MemoryError`` instead of taking the machine's memory. The
limit is process-wide while it holds (another thread allocating at that
moment shares the budget). Elsewhere it does nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["memory_budget", "mapped_bytes"]


def mapped_bytes() -> int | None:
    """The process's mapped address space in bytes (Linux), or None."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def memory_budget(extra_bytes: int):
    """Inside the block, at most ``extra_bytes`` more memory may be mapped (see the module doc)."""
    mapped = mapped_bytes() if sys.platform.startswith("linux") else None
    if mapped is None:
        yield
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mapped + int(extra_bytes)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY and soft <= limit:
        yield  # (a tighter limit is set already)
        return
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
