"""Numba code of :class:`~pylearn_vae.ops.im2col.Im2Col` and ``Col2Im``.

:func:`register` registers both operations with PyTensor's Numba
dispatch (``register_funcify_default_op_cache_key``: the cache key is the
operation's properties, so compiled loops are reused from Numba's on-disk
cache). :func:`pylearn_vae.speedups.resolve_mode` calls it for Numba modes.
"""

from __future__ import annotations

import numpy as np

from pylearn_vae.ops.im2col import Col2Im, Im2Col
from pylearn_vae.speedups import internals, support
from pylearn_vae.speedups.source import source_version

__all__ = ["VERSION", "register"]

#: Added to PyTensor's cache key of the loops below: changes with the source.
VERSION = source_version()

# The loops below mirror each other on purpose. Written as one loop with a
# direction flag (a compile-time constant) called from both, or with the
# bounds test hoisted out of the pixel loops, they ran 4-7x slower: Numba
# then no longer unrolled the constant-length loops (docs/performance.md).
# Channels are innermost: consecutive in memory on both sides of each copy.
#
# One-channel images get loops of their own, chosen once per call: inside
# the pixel loops, a channel loop of length one (or a test of the channel
# count) kept LLVM from unrolling the kernel loops at the optimisation level
# the programs use (NUMBA_OPT=2), which made these copies 4-7x slower.


def _numba_im2col(op, node=None, **kwargs):
    numba_njit = internals.get("numba_njit")
    (kr, kc), (sr, sc), (pr, pc), (oh, ow) = op.kernel_shape, op.stride, op.pad, op.out_shape

    @numba_njit
    def channels(x):
        b, rows, cols, c = x.shape
        out = np.empty((b * oh * ow, kr * kc * c), dtype=x.dtype)
        for n in range(b):
            for i in range(oh):
                for j in range(ow):
                    row = (n * oh + i) * ow + j
                    for p in range(kr):
                        r = i * sr + p - pr
                        for q in range(kc):
                            s = j * sc + q - pc
                            base = (p * kc + q) * c
                            if 0 <= r < rows and 0 <= s < cols:
                                for ch in range(c):
                                    out[row, base + ch] = x[n, r, s, ch]
                            else:  # padding
                                for ch in range(c):
                                    out[row, base + ch] = 0
        return out

    @numba_njit
    def one_channel(x):
        b, rows, cols, _ = x.shape
        out = np.empty((b * oh * ow, kr * kc), dtype=x.dtype)
        for n in range(b):
            for i in range(oh):
                for j in range(ow):
                    row = (n * oh + i) * ow + j
                    for p in range(kr):
                        r = i * sr + p - pr
                        for q in range(kc):
                            s = j * sc + q - pc
                            inside = 0 <= r < rows and 0 <= s < cols
                            out[row, p * kc + q] = x[n, r, s, 0] if inside else 0
        return out

    @numba_njit
    def im2col(x):
        if x.shape[3] == 1:
            return one_channel(x)
        return channels(x)

    return im2col, VERSION


def _numba_col2im(op, node=None, **kwargs):
    numba_njit = internals.get("numba_njit")
    (kr, kc), (sr, sc), (pr, pc), (oh, ow) = op.kernel_shape, op.stride, op.pad, op.out_shape
    rows, cols = op.image_shape

    @numba_njit
    def channels(patches):
        b = patches.shape[0] // (oh * ow)
        c = patches.shape[1] // (kr * kc)
        out = np.zeros((b, rows, cols, c), dtype=patches.dtype)
        for n in range(b):
            for i in range(oh):
                for j in range(ow):
                    row = (n * oh + i) * ow + j
                    for p in range(kr):
                        r = i * sr + p - pr
                        if r < 0 or r >= rows:
                            continue
                        for q in range(kc):
                            s = j * sc + q - pc
                            if s < 0 or s >= cols:
                                continue
                            base = (p * kc + q) * c
                            for ch in range(c):
                                out[n, r, s, ch] += patches[row, base + ch]
        return out

    @numba_njit
    def one_channel(patches):
        b = patches.shape[0] // (oh * ow)
        out = np.zeros((b, rows, cols, 1), dtype=patches.dtype)
        for n in range(b):
            for i in range(oh):
                for j in range(ow):
                    row = (n * oh + i) * ow + j
                    for p in range(kr):
                        r = i * sr + p - pr
                        if r < 0 or r >= rows:
                            continue
                        for q in range(kc):
                            s = j * sc + q - pc
                            if s < 0 or s >= cols:
                                continue
                            out[n, r, s, 0] += patches[row, p * kc + q]
        return out

    @numba_njit
    def col2im(patches):
        if patches.shape[1] == kr * kc:
            return one_channel(patches)
        return channels(patches)

    return col2im, VERSION


_REGISTERED: list[bool] = []


def register() -> bool:
    """Register the loops with PyTensor's Numba dispatch (once); whether they
    are registered. Where an internal they need has moved
    (:data:`~pylearn_vae.speedups.internals.REQUIRED`, speed-up
    ``numba_im2col``) they are not, with one warning, and PyTensor's Numba
    backend runs the operations' NumPy ``perform``."""
    if not _REGISTERED:
        usable = support.available("numba_im2col")
        if usable:
            register_op = internals.get("register_funcify_default_op_cache_key")
            register_op(Im2Col)(_numba_im2col)
            register_op(Col2Im)(_numba_col2im)
        _REGISTERED.append(usable)
    return _REGISTERED[0]
