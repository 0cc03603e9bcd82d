"""Treat subnormal float32/float64 numbers as zero in this thread (x86-64).

Momentum velocities of weights whose gradient is almost always zero (the
first layer's weights of pixels that are almost never on in MNIST) decay
geometrically and spend thousands of steps as subnormal numbers, which x86
processors compute through a slow microcode path, so the real training
program ran each step slower than a benchmark started from fresh
parameters (measured in docs/performance.md). Deep-learning frameworks usually run with
the processor's "flush to zero" (FTZ: subnormal results become 0) and
"denormals are zero" (DAZ: subnormal inputs are read as 0) modes on.

:func:`flushed_denormals` sets both bits of the calling thread's MXCSR
register for the length of a ``with`` block; the command-line programs
train and evaluate inside one (the computation runs in the main thread on
the Numba and C backends). It changes nothing on other processors.
"""

from __future__ import annotations

import contextlib
import functools
import platform
from collections.abc import Iterator

__all__ = ["flushed_denormals", "FTZ_DAZ_BITS"]

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
def flushed_denormals() -> Iterator[bool]:
    """Run the ``with`` block with FTZ and DAZ on in the calling thread (x86-64).

    Yields whether the modes could be set (False on other processors); the
    thread's previous modes come back when the block ends.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        yield False
        return
    import numpy as np

    update = _mxcsr_update_function()
    old = update(np.uint32(0xFFFFFFFF), np.uint32(FTZ_DAZ_BITS))
    try:
        yield True
    finally:
        update(np.uint32(0), np.uint32(old))
