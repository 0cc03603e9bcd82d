r"""Image patches as matrix rows (``Im2Col``) and their adjoint (``Col2Im``).

A 2-d convolution of a batch is one matrix product once every kernel-sized
patch of the images is a row of a matrix ("im2col"): BLAS then does all the
arithmetic, and the gradient is two more matrix products plus ``Col2Im``,
which adds the rows back onto the images. PyTensor 3 has no
``pytensor.tensor.conv`` module, and its ``pytensor.tensor.signal``
convolution is a one-image, one-kernel operation with no strides and no
Numba or JAX code, so these two small operations carry the convolutions of
:mod:`pylearn_vae.expr.conv`:

- Numba (the default backend): loops compiled by Numba, registered with
  PyTensor's ``numba_funcify`` dispatch (its cache key is the operation's
  properties, so Numba's on-disk cache works);
- JAX: the same maths in ``jax.numpy``, registered with ``jax_funcify``;
- C (``mode=CVM``) and Python: :meth:`perform`, which does the copies with
  NumPy slicing (``kernel rows x kernel columns`` slice copies per call).

The Numba and JAX code is registered when :func:`pylearn_vae.compile.function`
resolves a Numba or JAX mode (importing either backend costs time the others
need not pay). A graph compiled with ``pytensor.function`` directly should
call ``pylearn_vae.speedups.numba_im2col.register()`` (or import ``jax_im2col``) first; otherwise
PyTensor's Numba backend runs :meth:`perform` in object mode, correct but slow.

Layout. Images are channels-last, ``(batch, rows, cols, channels)``: the
convolutions of :mod:`pylearn_vae.expr.conv` take and give Pylearn2's
``(batch, channels, rows, cols)`` tensors as transposed views of such
arrays (a matrix product's rows are pixels, its columns channels), so no
copy is needed between layers, and a patch's channels are consecutive in
memory on both sides of the copy. With ``oh x ow`` output positions,
``Im2Col`` gives a ``(batch * oh * ow, kr * kc * channels)`` matrix whose row
``(n * oh + i) * ow + j`` holds the ``kr x kc`` patch whose top-left pixel
is ``(i * sr - pr, j * sc - pc)``, pixel by pixel, each pixel's channels
together (pixels outside the image read as zero):

.. math::
    \mathrm{cols}[(n, i, j), (p, q, c)] = x[n, i s_r + p - p_r, j s_c + q - p_c, c]

``Col2Im`` is its adjoint: it adds every row's entries back at the pixels
they were read from, dropping the padding. Each one's gradient is the other.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

__all__ = ["Im2Col", "Col2Im", "im2col", "col2im", "output_positions"]


def output_positions(image_shape, kernel_shape, stride, pad) -> tuple[int, int]:
    """Output rows and columns of a patch grid.

    >>> output_positions((28, 28), (4, 4), (2, 2), (1, 1))
    (14, 14)
    """
    out = []
    for n, k, s, p in zip(image_shape, kernel_shape, stride, pad):
        span = n + 2 * p - k
        if span < 0:
            raise ValueError(
                f"a {tuple(kernel_shape)} kernel does not fit a {tuple(image_shape)} image "
                f"padded by {tuple(pad)}"
            )
        out.append(span // s + 1)
    return tuple(out)


def _pairs(*values) -> tuple:
    return tuple(tuple(int(v) for v in value) for value in values)


class _PatchGeometry(Op):
    """Shared properties: static image size, kernel size, stride and zero padding."""

    __props__ = ("image_shape", "kernel_shape", "stride", "pad")

    def __init__(self, image_shape, kernel_shape, stride=(1, 1), pad=(0, 0)) -> None:
        self.image_shape, self.kernel_shape, self.stride, self.pad = _pairs(
            image_shape, kernel_shape, stride, pad
        )
        self.out_shape = output_positions(
            self.image_shape, self.kernel_shape, self.stride, self.pad
        )

    @property
    def patch_size(self) -> int:
        return self.kernel_shape[0] * self.kernel_shape[1]

    @property
    def positions(self) -> int:
        return self.out_shape[0] * self.out_shape[1]

    def _windows(self):
        """``(p, q, row slice, column slice)`` of each kernel offset in the padded image."""
        (kr, kc), (sr, sc), (oh, ow) = self.kernel_shape, self.stride, self.out_shape
        for p in range(kr):
            for q in range(kc):
                yield p, q, slice(p, p + sr * (oh - 1) + 1, sr), slice(q, q + sc * (ow - 1) + 1, sc)


class Im2Col(_PatchGeometry):
    """Patches of ``(batch, rows, cols, channels)`` images as matrix rows (see the module)."""

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        if x.type.ndim != 4:
            raise TypeError(f"Im2Col expects 4-d images, got a {x.type.ndim}-d {x.type}")
        b, c = x.type.shape[0], x.type.shape[3]
        rows = None if b is None else b * self.positions
        cols = None if c is None else c * self.patch_size
        return Apply(self, [x], [pt.tensor(dtype=x.type.dtype, shape=(rows, cols))])

    def perform(self, node, inputs, output_storage):
        (x,) = inputs
        output_storage[0][0] = im2col_numpy(x, self)

    def infer_shape(self, *args):
        # PyTensor 3.0 passes (fgraph, node, shapes), 3.3 (node, shapes).
        b, _, _, c = args[-1][0]
        return [(b * self.positions, c * self.patch_size)]

    def pullback(self, inputs, outputs, output_grads):
        return [Col2Im(self.image_shape, self.kernel_shape, self.stride, self.pad)(output_grads[0])]


class Col2Im(_PatchGeometry):
    """Rows of patches added back onto ``(batch, rows, cols, channels)`` images."""

    def make_node(self, cols):
        cols = pt.as_tensor_variable(cols)
        if cols.type.ndim != 2:
            raise TypeError(f"Col2Im expects a matrix of patches, got a {cols.type}")
        r, k = cols.type.shape
        b = None if r is None else r // self.positions
        c = None if k is None else k // self.patch_size
        out = pt.tensor(dtype=cols.type.dtype, shape=(b, *self.image_shape, c))
        return Apply(self, [cols], [out])

    def perform(self, node, inputs, output_storage):
        (cols,) = inputs
        output_storage[0][0] = col2im_numpy(cols, self)

    def infer_shape(self, *args):
        r, k = args[-1][0]
        return [(r // self.positions, *self.image_shape, k // self.patch_size)]

    def pullback(self, inputs, outputs, output_grads):
        return [Im2Col(self.image_shape, self.kernel_shape, self.stride, self.pad)(output_grads[0])]


def im2col(x, image_shape, kernel_shape, stride=(1, 1), pad=(0, 0)):
    """Symbolic :class:`Im2Col` of ``x``."""
    return Im2Col(image_shape, kernel_shape, stride, pad)(x)


def col2im(cols, image_shape, kernel_shape, stride=(1, 1), pad=(0, 0)):
    """Symbolic :class:`Col2Im` of ``cols``."""
    return Col2Im(image_shape, kernel_shape, stride, pad)(cols)


# --- NumPy (Python and C backends) ----------------------------------------------------


def im2col_numpy(x: np.ndarray, geometry: _PatchGeometry) -> np.ndarray:
    """:class:`Im2Col` with NumPy slicing."""
    b, rows, cols, c = x.shape
    (pr, pc), (oh, ow) = geometry.pad, geometry.out_shape
    padded = np.zeros((b, rows + 2 * pr, cols + 2 * pc, c), dtype=x.dtype)
    padded[:, pr : pr + rows, pc : pc + cols] = x
    kr, kc = geometry.kernel_shape
    out = np.empty((b, oh, ow, kr, kc, c), dtype=x.dtype)
    for p, q, rs, cs in geometry._windows():
        out[:, :, :, p, q] = padded[:, rs, cs]
    return out.reshape(b * oh * ow, kr * kc * c)


def col2im_numpy(cols: np.ndarray, geometry: _PatchGeometry) -> np.ndarray:
    """:class:`Col2Im` with NumPy slicing."""
    (rows, ncols), (pr, pc), (oh, ow) = geometry.image_shape, geometry.pad, geometry.out_shape
    (kr, kc), b = geometry.kernel_shape, cols.shape[0] // geometry.positions
    c = cols.shape[1] // geometry.patch_size
    patches = cols.reshape(b, oh, ow, kr, kc, c)
    padded = np.zeros((b, rows + 2 * pr, ncols + 2 * pc, c), dtype=cols.dtype)
    for p, q, rs, cs in geometry._windows():
        padded[:, rs, cs] += patches[:, :, :, p, q]
    return np.ascontiguousarray(padded[:, pr : pr + rows, pc : pc + ncols])
