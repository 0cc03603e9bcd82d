r"""Convolution and spatial pooling of image batches in ('b', 'c', 0, 1) layout.

Built from strided slices, ``tensordot`` and elementwise maxima only, so
the graphs compile (and differentiate) on every PyTensor backend: PyTensor
3 has no ``pytensor.tensor.conv`` module, and the 2-d convolution in
``pytensor.tensor.signal`` has no Numba or JAX implementation.
"""

from __future__ import annotations

import math

import numpy as np
import pytensor.tensor as pt

__all__ = ["conv2d", "conv_output_shape", "pool_output_shape", "max_pool", "mean_pool"]


def conv_output_shape(image_shape, kernel_shape, stride=(1, 1), border_mode="valid"):
    """Rows and columns of :func:`conv2d`'s output.

    >>> conv_output_shape((28, 28), (5, 5), (2, 2))
    (12, 12)
    >>> conv_output_shape((4, 4), (3, 3), border_mode="full")
    (6, 6)
    """
    if border_mode not in ("valid", "full"):
        raise ValueError(f"border_mode must be 'valid' or 'full', got {border_mode!r}")
    out = []
    for n, k, s in zip(image_shape, kernel_shape, stride):
        span = n - k if border_mode == "valid" else n + k - 2
        if span < 0:
            raise ValueError(
                f"a {tuple(kernel_shape)} kernel does not fit a {tuple(image_shape)} image "
                "with border_mode='valid'"
            )
        out.append(span // s + 1)
    return tuple(out)


def conv2d(images, filters, image_shape, filter_shape, stride=(1, 1), border_mode="valid"):
    r"""2-d convolution (filters flipped, as Theano's ``conv2d``) of a batch of images.

    .. math::
        y_{b,o,r,c} = \sum_{i,p,q} x_{b,i,\,s_0 r + p,\,s_1 c + q}\;
                      W_{o,i,\,k_0 - 1 - p,\,k_1 - 1 - q}

    Parameters
    ----------
    images : tensor, shape (batch, in_channels, rows, cols)
    filters : tensor, shape (out_channels, in_channels, k_rows, k_cols)
    image_shape, filter_shape : pair of int
        Static (rows, cols) of the images and of the kernels.
    stride : pair of int
        Subsampling of the output (Theano's ``subsample``).
    border_mode : {'valid', 'full'}
        'valid' keeps positions where the kernel lies inside the image;
        'full' pads the image with ``k - 1`` zeros on each side.

    Returns
    -------
    tensor, shape (batch, out_channels, out_rows, out_cols)
    """
    kr, kc = filter_shape
    sr, sc = stride
    out_r, out_c = conv_output_shape(image_shape, filter_shape, stride, border_mode)
    if border_mode == "full":
        size = (image_shape[0] + 2 * (kr - 1), image_shape[1] + 2 * (kc - 1))
        images = _embed(images, image_shape, size, (kr - 1, kc - 1), 0)
    # Correlate with the flipped kernel: patch (p, q) meets W[..., kr-1-p, kc-1-q].
    flipped = filters[:, :, ::-1, ::-1]
    patches = [
        images[:, :, p : p + sr * (out_r - 1) + 1 : sr, q : q + sc * (out_c - 1) + 1 : sc]
        for p in range(kr)
        for q in range(kc)
    ]
    # (kr*kc, batch, in, out_r, out_c) -> (batch, in, kr*kc, out_r, out_c)
    stacked = pt.stack(patches, axis=2)
    kernel = flipped.reshape((flipped.shape[0], flipped.shape[1], kr * kc))
    out = pt.tensordot(stacked, kernel, axes=[[1, 2], [1, 2]])  # (batch, r, c, out)
    return out.dimshuffle(0, 3, 1, 2)


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
