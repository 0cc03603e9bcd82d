"""Numba code of :class:`~pylearn_vae.ops.im2col.Im2Col` and ``Col2Im``.

Importing this module registers both operations with PyTensor's Numba
dispatch (``register_funcify_default_op_cache_key``: the cache key is the
operation's properties, so compiled loops are reused from Numba's on-disk
cache). :func:`pylearn_vae.utils.compile.resolve_mode` imports it for
Numba modes.
"""

from __future__ import annotations

import numpy as np
from pytensor.link.numba.dispatch.basic import (
    numba_njit,
    register_funcify_default_op_cache_key,
)

from pylearn_vae.ops.im2col import Col2Im, Im2Col

__all__ = ["VERSION"]

#: Bump when the loops below change (added to PyTensor's cache key).
VERSION = 1

# The two loops below mirror each other on purpose. Written as one loop with
# a direction flag (a compile-time constant) called from both, or with the
# bounds test hoisted out of the inner loop, they ran 4-7x slower: Numba then
# no longer unrolls the constant-length inner loop (docs/performance.md).


@register_funcify_default_op_cache_key(Im2Col)
def _numba_im2col(op, node=None, **kwargs):
    (kr, kc), (sr, sc), (pr, pc), (oh, ow) = op.kernel_shape, op.stride, op.pad, op.out_shape

    @numba_njit
    def im2col(x):
        b, c, rows, cols = x.shape
        out = np.zeros((b * oh * ow, c * kr * kc), dtype=x.dtype)
        for n in range(b):
            for i in range(oh):
                for j in range(ow):
                    row = (n * oh + i) * ow + j
                    for ch in range(c):
                        for p in range(kr):
                            r = i * sr + p - pr
                            if r < 0 or r >= rows:
                                continue
                            base = (ch * kr + p) * kc
                            for q in range(kc):
                                s = j * sc + q - pc
                                if 0 <= s < cols:
                                    out[row, base + q] = x[n, ch, r, s]
        return out

    return im2col, VERSION


@register_funcify_default_op_cache_key(Col2Im)
def _numba_col2im(op, node=None, **kwargs):
    (kr, kc), (sr, sc), (pr, pc), (oh, ow) = op.kernel_shape, op.stride, op.pad, op.out_shape
    rows, cols = op.image_shape

    @numba_njit
    def col2im(patches):
        b = patches.shape[0] // (oh * ow)
        c = patches.shape[1] // (kr * kc)
        out = np.zeros((b, c, rows, cols), dtype=patches.dtype)
        for n in range(b):
            for i in range(oh):
                for j in range(ow):
                    row = (n * oh + i) * ow + j
                    for ch in range(c):
                        for p in range(kr):
                            r = i * sr + p - pr
                            if r < 0 or r >= rows:
                                continue
                            base = (ch * kr + p) * kc
                            for q in range(kc):
                                s = j * sc + q - pc
                                if 0 <= s < cols:
                                    out[n, ch, r, s] += patches[row, base + q]
        return out

    return col2im, VERSION
