"""The numerics setting: subnormal float32/float64 numbers are treated as zero.

Momentum velocities of weights whose gradient is almost always zero (the
first layer's weights of pixels that are almost never on in MNIST) decay
geometrically and spend thousands of steps as subnormal numbers, which x86
processors compute through a slow microcode path, so the real training
program ran each step slower than a benchmark started from fresh
parameters (measured in docs/performance.md). Deep-learning frameworks usually run with
the processor's "flush to zero" (FTZ: subnormal results become 0) and
"denormals are zero" (DAZ: subnormal inputs are read as 0) modes on.

:func:`flushed_denormals` sets both bits of the calling thread's MXCSR
register for the length of a ``with`` block (the computation runs in the
calling thread on the Numba and C backends). It changes nothing on other
processors.

This changes results (a subnormal becomes 0), so it is a declared setting,
not a speed-up: on unless ``PYLEARN_VAE_FLUSH_DENORMALS=0`` or
:func:`set_flush_denormals` ``(False)``, and applied through
:func:`applied` by everything that trains or evaluates at length
(``Train.main_loop``, the importance-sampling evaluation and its worker
processes), so the programs, a library user and the test suite (which
applies it for the whole session) compute the same way.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
from collections.abc import Iterator

__all__ = [
    "ENV_VARIABLE",
    "FTZ_DAZ_BITS",
    "applied",
    "flush_denormals_enabled",
    "flushed_denormals",
    "set_flush_denormals",
]

#: Set to ``0`` to keep subnormal numbers (IEEE gradual underflow).
ENV_VARIABLE = "PYLEARN_VAE_FLUSH_DENORMALS"

#: What :func:`set_flush_denormals` said last (None: the environment decides).
_SETTING: list[bool | None] = [None]

#: MXCSR bits: flush to zero (bit 15) and denormals are zero (bit 6).
FTZ_DAZ_BITS = (1 << 15) | (1 << 6)


@functools.cache
def _mxcsr_update_function():
    """A compiled ``update(keep, add)``: MXCSR becomes ``(old & keep) | add``; returns ``old``."""
    from llvmlite import ir
    from numba import njit, types
    from numba.extending import intrinsic

    @intrinsic
    def mxcsr_update(typingctx, keep, add):
        def codegen(context, builder, signature, args):
            i32, i8p = ir.IntType(32), ir.IntType(8).as_pointer()
            access = ir.FunctionType(ir.VoidType(), [i8p])
            store = builder.module.declare_intrinsic("llvm.x86.sse.stmxcsr", fnty=access)
            load = builder.module.declare_intrinsic("llvm.x86.sse.ldmxcsr", fnty=access)
            slot = builder.alloca(i32)
            pointer = builder.bitcast(slot, i8p)
            builder.call(store, [pointer])
            old = builder.load(slot)
            builder.store(builder.or_(builder.and_(old, args[0]), args[1]), slot)
            builder.call(load, [pointer])
            return old

        return types.uint32(types.uint32, types.uint32), codegen

    @njit(cache=False)
    def update(keep, add):
        return mxcsr_update(keep, add)

    return update


@contextlib.contextmanager
def flushed_denormals(flush: bool = True) -> Iterator[bool]:
    """Run the ``with`` block with FTZ and DAZ on (``flush``) or off in the
    calling thread (x86-64).

    Yields whether the modes could be set (False on other processors); the
    thread's previous modes come back when the block ends.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        yield False
        return
    import numpy as np

    update = _mxcsr_update_function()
    keep, add = (0xFFFFFFFF, FTZ_DAZ_BITS) if flush else (~FTZ_DAZ_BITS & 0xFFFFFFFF, 0)
    old = update(np.uint32(keep), np.uint32(add))
    try:
        yield True
    finally:
        update(np.uint32(0), np.uint32(old))


def flush_denormals_enabled() -> bool:
    """Whether :func:`applied` flushes subnormals: :func:`set_flush_denormals`
    if it was called, else ``PYLEARN_VAE_FLUSH_DENORMALS`` (on unless ``0``)."""
    if _SETTING[0] is not None:
        return _SETTING[0]
    return os.environ.get(ENV_VARIABLE, "1").strip() != "0"


def set_flush_denormals(flag: bool | None) -> bool | None:
    """Flush subnormals (True) or keep them (False) in what :func:`applied`
    runs from now on in this process; None hands the decision back to
    ``PYLEARN_VAE_FLUSH_DENORMALS``. Returns the previous setting."""
    if flag is not None and not isinstance(flag, bool):
        raise TypeError(f"set_flush_denormals takes True, False or None, got {flag!r}")
    previous, _SETTING[0] = _SETTING[0], flag
    return previous


@contextlib.contextmanager
def applied() -> Iterator[bool]:
    """Run the ``with`` block under the numerics setting in the calling
    thread: subnormals flushed where :func:`flush_denormals_enabled`, kept
    (IEEE gradual underflow) where not. Yields whether they are flushed."""
    flush = flush_denormals_enabled()
    with flushed_denormals(flush) as done:
        yield done and flush
