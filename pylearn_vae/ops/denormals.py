"""Treat subnormal float32/float64 numbers as zero in this thread (x86-64).

Momentum velocities of weights whose gradient is almost always zero (the
first layer's weights of pixels that are almost never on in MNIST) decay
geometrically and spend thousands of steps as subnormal numbers, which x86
processors compute through a slow microcode path, so the real training
program ran each step slower than a benchmark started from fresh
parameters (measured in docs/performance.md). Deep-learning frameworks usually run with
the processor's "flush to zero" (FTZ: subnormal results become 0) and
"denormals are zero" (DAZ: subnormal inputs are read as 0) modes on.

:func:`flush_denormals` sets both bits of the calling thread's MXCSR
register; the command-line programs call it at start (the computation runs
in the main thread on the Numba and C backends). It is a no-op on other
processors.
"""

from __future__ import annotations

import platform

__all__ = ["flush_denormals", "FTZ_DAZ_BITS"]

#: MXCSR bits: flush to zero (bit 15) and denormals are zero (bit 6).
FTZ_DAZ_BITS = (1 << 15) | (1 << 6)

_MXCSR_OR = None


def _mxcsr_or_function():
    """A compiled function that ORs its argument into MXCSR and returns the old value."""
    from llvmlite import ir
    from numba import njit, types
    from numba.extending import intrinsic

    @intrinsic
    def mxcsr_or(typingctx, bits):
        def codegen(context, builder, signature, args):
            i32, i8p = ir.IntType(32), ir.IntType(8).as_pointer()
            access = ir.FunctionType(ir.VoidType(), [i8p])
            store = builder.module.declare_intrinsic("llvm.x86.sse.stmxcsr", fnty=access)
            load = builder.module.declare_intrinsic("llvm.x86.sse.ldmxcsr", fnty=access)
            slot = builder.alloca(i32)
            pointer = builder.bitcast(slot, i8p)
            builder.call(store, [pointer])
            old = builder.load(slot)
            builder.store(builder.or_(old, args[0]), slot)
            builder.call(load, [pointer])
            return old

        return types.uint32(types.uint32), codegen

    @njit(cache=False)
    def apply(bits):
        return mxcsr_or(bits)

    return apply


def flush_denormals() -> bool:
    """Turn on FTZ and DAZ for the calling thread; return whether it was done."""
    global _MXCSR_OR
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    if _MXCSR_OR is None:
        _MXCSR_OR = _mxcsr_or_function()
    import numpy as np

    _MXCSR_OR(np.uint32(FTZ_DAZ_BITS))
    return True
