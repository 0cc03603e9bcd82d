"""JAX code of :class:`~pylearn_vae.ops.im2col.Im2Col` and ``Col2Im``.

Importing this module (which imports JAX) registers both operations with
PyTensor's ``jax_funcify``; :func:`pylearn_vae.compile.resolve_mode`
imports it for JAX modes. ``Col2Im`` is the linear transpose of ``Im2Col``,
so JAX derives it (and XLA fuses the slices) rather than a scatter-add
written by hand.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from pytensor.link.jax.dispatch import jax_funcify

from pylearn_vae.ops.im2col import Col2Im, Im2Col

__all__: list[str] = []


def _im2col_fn(op):
    (kr, kc), (pr, pc), (oh, ow) = op.kernel_shape, op.pad, op.out_shape

    def im2col(x):
        b, c = x.shape[0], x.shape[3]
        padded = jnp.pad(x, ((0, 0), (pr, pr), (pc, pc), (0, 0)))
        windows = [padded[:, rs, cs] for _, _, rs, cs in op._windows()]
        stacked = jnp.stack(windows, axis=3)  # (b, oh, ow, kr*kc, c)
        return stacked.reshape(b * oh * ow, kr * kc * c)

    return im2col


@jax_funcify.register(Im2Col)
def _jax_im2col(op, **kwargs):
    return _im2col_fn(op)


@jax_funcify.register(Col2Im)
def _jax_col2im(op, **kwargs):
    forward = _im2col_fn(op)
    rows, cols = op.image_shape

    def col2im(patches):
        b = patches.shape[0] // op.positions
        c = patches.shape[1] // op.patch_size
        like = jax.ShapeDtypeStruct((b, rows, cols, c), patches.dtype)
        (images,) = jax.linear_transpose(forward, like)(patches)
        return images

    return col2im
