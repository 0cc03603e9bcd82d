r"""Convolution, transposed convolution and spatial pooling of ('b', 'c', 0, 1) batches.

Convolutions are matrix products over image patches: :class:`Im2Col` and
:class:`Col2Im` (:mod:`pylearn_vae.ops.im2col`, with Numba, JAX and NumPy
code) move the pixels, BLAS does the arithmetic, and the gradients are two
more products. Pooling uses strided slices and elementwise maxima.
"""

from __future__ import annotations

import math

import numpy as np
import pytensor.tensor as pt

from pylearn_vae.ops.im2col import col2im, im2col, output_positions

__all__ = [
    "conv2d",
    "conv2d_transpose",
    "conv_output_shape",
    "transpose_output_shape",
    "border_padding",
    "pool_output_shape",
    "max_pool",
    "mean_pool",
]


def border_padding(border_mode, kernel_shape) -> tuple[int, int]:
    """Zero padding (rows, columns) of a Theano ``border_mode``.

    'valid' pads nothing, 'full' ``k - 1``, 'half' ``k // 2``; an int or a
    pair of ints is the padding itself.

    >>> border_padding("full", (5, 3))
    (4, 2)
    >>> border_padding(1, (4, 4))
    (1, 1)
    """
    if border_mode == "valid":
        return (0, 0)
    if border_mode == "full":
        return tuple(k - 1 for k in kernel_shape)
    if border_mode == "half":
        return tuple(k // 2 for k in kernel_shape)
    pair = (border_mode, border_mode) if np.ndim(border_mode) == 0 else tuple(border_mode)
    if len(pair) != 2 or not all(
        isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 0 for p in pair
    ):
        raise ValueError(
            "border_mode must be 'valid', 'full', 'half', a non-negative int or a pair of "
            f"them, got {border_mode!r}"
        )
    pad = (int(pair[0]), int(pair[1]))
    return pad


def conv_output_shape(image_shape, kernel_shape, stride=(1, 1), border_mode="valid"):
    """Rows and columns of :func:`conv2d`'s output.

    >>> conv_output_shape((28, 28), (5, 5), (2, 2))
    (12, 12)
    >>> conv_output_shape((4, 4), (3, 3), border_mode="full")
    (6, 6)
    """
    pad = border_padding(border_mode, kernel_shape)
    return output_positions(image_shape, kernel_shape, stride, pad)


def conv2d(images, filters, image_shape, filter_shape, stride=(1, 1), border_mode="valid"):
    r"""2-d convolution (filters flipped, as Theano's ``conv2d``) of a batch of images.

    .. math::
        y_{b,o,r,c} = \sum_{i,p,q} \tilde x_{b,i,\,s_0 r + p,\,s_1 c + q}\;
                      W_{o,i,\,k_0 - 1 - p,\,k_1 - 1 - q}

    with :math:`\tilde x` the images zero-padded as ``border_mode`` says.

    Parameters
    ----------
    images : tensor, shape (batch, in_channels, rows, cols)
    filters : tensor, shape (out_channels, in_channels, k_rows, k_cols)
    image_shape, filter_shape : pair of int
        Static (rows, cols) of the images and of the kernels.
    stride : pair of int
        Subsampling of the output (Theano's ``subsample``).
    border_mode : {'valid', 'full', 'half'}, int or pair of int
        Zero padding, as :func:`border_padding`.

    Returns
    -------
    tensor, shape (batch, out_channels, out_rows, out_cols)
    """
    pad = border_padding(border_mode, filter_shape)
    out_r, out_c = output_positions(image_shape, filter_shape, stride, pad)
    # Channels-last inside (see pylearn_vae.ops.im2col): when the images are
    # another convolution's output, this view undoes that one's and the
    # patches are read from the matrix product's own array.
    cols = im2col(images.dimshuffle(0, 2, 3, 1), image_shape, filter_shape, stride, pad)
    flipped = filters[:, :, ::-1, ::-1].dimshuffle(0, 2, 3, 1)  # (out, kr, kc, in)
    kernel = flipped.reshape((flipped.shape[0], -1))  # (out, kr * kc * in)
    out = pt.dot(cols, kernel.T)  # (batch * out_r * out_c, out)
    return out.reshape((images.shape[0], out_r, out_c, filters.shape[0])).dimshuffle(0, 3, 1, 2)


def transpose_output_shape(input_shape, kernel_shape, stride=(1, 1), pad=(0, 0)):
    """Smallest image whose :func:`conv2d_transpose` grid has ``input_shape`` positions.

    >>> transpose_output_shape((7, 7), (4, 4), (2, 2), (1, 1))
    (14, 14)
    """
    return tuple(
        (n - 1) * s + k - 2 * p for n, k, s, p in zip(input_shape, kernel_shape, stride, pad)
    )


def conv2d_transpose(inputs, filters, output_shape, filter_shape, stride=(1, 1), pad=(0, 0)):
    r"""Transposed ("fractionally strided") convolution: the adjoint of a strided correlation.

    Each input pixel spreads its value, weighted by the kernel, over a
    ``k_rows x k_cols`` block of the output; blocks start every ``stride``
    pixels, and ``pad`` rows and columns are cut from each border:

    .. math::
        y_{b,o,\,s_0 r + p - d_0,\,s_1 c + q - d_1} \mathrel{+}= x_{b,i,r,c}\, W_{i,o,p,q}

    (PyTorch's ``conv_transpose2d`` with the same weight layout).

    Parameters
    ----------
    inputs : tensor, shape (batch, in_channels, rows, cols)
    filters : tensor, shape (in_channels, out_channels, k_rows, k_cols)
    output_shape : pair of int
        Static (rows, cols) of the output; the input must be the grid of
        correlation positions over it (see :func:`transpose_output_shape`).
    filter_shape, stride, pad : pair of int
    """
    rows, cols = output_positions(output_shape, filter_shape, stride, pad)
    flat = inputs.dimshuffle(0, 2, 3, 1).reshape((-1, inputs.shape[1]))  # (b * r * c, in)
    kernel = filters.dimshuffle(0, 2, 3, 1).reshape((filters.shape[0], -1))  # (in, kr * kc * out)
    patches = pt.dot(flat, kernel)
    return col2im(patches, output_shape, filter_shape, stride, pad).dimshuffle(0, 3, 1, 2)


def pool_output_shape(image_shape, pool_shape, pool_stride):
    """Rows and columns after pooling, with every pixel in at least one pool.

    >>> pool_output_shape((5, 5), (2, 2), (2, 2))
    (3, 3)
    """
    out = []
    for n, p, s in zip(image_shape, pool_shape, pool_stride):
        if not 0 < p <= n or s < 1:
            raise ValueError(
                f"pool_shape {tuple(pool_shape)} / pool_stride {tuple(pool_stride)} do not "
                f"fit a {tuple(image_shape)} image"
            )
        out.append(math.ceil((n - p) / s) + 1)
    return tuple(out)


def _pools(padded, pool_shape, pool_stride, out_shape):
    (pr, pc), (sr, sc), (orow, ocol) = pool_shape, pool_stride, out_shape
    for p in range(pr):
        for q in range(pc):
            yield padded[:, :, p : p + sr * (orow - 1) + 1 : sr, q : q + sc * (ocol - 1) + 1 : sc]


def _pad_to_cover(x, image_shape, pool_shape, pool_stride, out_shape, value):
    need = padded_shape(image_shape, pool_shape, pool_stride, out_shape)
    extra = [k - n for k, n in zip(need, image_shape)]
    if not any(extra):
        return x
    return _embed(x, image_shape, need, (0, 0), value)


def _embed(x, image_shape, size, offset, value):
    """``x`` (b, c, rows, cols) placed at ``offset`` in a ``size`` canvas of ``value``.

    Slices use the static ``image_shape`` so that JAX can trace them
    (``pt.pad`` would also upcast float32 batches to float64).
    """
    # A 4-d constant: JAX turns a scalar constant into a float64 "weak" value.
    fill = pt.constant(np.full((1, 1, 1, 1), value, dtype=x.dtype))
    canvas = pt.alloc(fill, x.shape[0], x.shape[1], *size)
    (top, left), (rows, cols) = offset, image_shape
    return pt.set_subtensor(canvas[:, :, top : top + rows, left : left + cols], x)


def max_pool(bc01, pool_shape, pool_stride, image_shape):
    """Maximum over ``pool_shape`` windows every ``pool_stride`` pixels.

    Windows that run past the bottom or right edge take the maximum of the
    pixels they do cover (as Pylearn2's ``max_pool``).
    """
    out_shape = pool_output_shape(image_shape, pool_shape, pool_stride)
    lowest = np.finfo(bc01.dtype).min
    padded = _pad_to_cover(bc01, image_shape, pool_shape, pool_stride, out_shape, lowest)
    result = None
    for window in _pools(padded, pool_shape, pool_stride, out_shape):
        result = window if result is None else pt.maximum(result, window)
    return result


def mean_pool(bc01, pool_shape, pool_stride, image_shape):
    """Mean over ``pool_shape`` windows every ``pool_stride`` pixels.

    Windows that run past the edge average the pixels they cover (as
    Pylearn2's ``mean_pool``).
    """
    out_shape = pool_output_shape(image_shape, pool_shape, pool_stride)
    padded = _pad_to_cover(bc01, image_shape, pool_shape, pool_stride, out_shape, 0)
    total = None
    for window in _pools(padded, pool_shape, pool_stride, out_shape):
        total = window if total is None else total + window
    # How many real pixels each window covers, known from the static shapes.
    covered = np.zeros(padded_shape(image_shape, pool_shape, pool_stride, out_shape))
    covered[: image_shape[0], : image_shape[1]] = 1.0
    count = sum(_pools(covered[None, None], pool_shape, pool_stride, out_shape))[0, 0]
    return total / pt.constant(count.astype(bc01.dtype))


def padded_shape(image_shape, pool_shape, pool_stride, out_shape):
    """Rows and columns that the pooling windows span (at least the image's)."""
    return [
        max(n, s * (o - 1) + p)
        for n, o, p, s in zip(image_shape, out_shape, pool_shape, pool_stride)
    ]
