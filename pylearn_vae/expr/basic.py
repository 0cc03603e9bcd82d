"""Numerically careful reductions."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import zero_grad

__all__ = ["log_sum_exp", "mean"]


def log_sum_exp(A, axis=None, keepdims: bool = False):
    r"""Compute :math:`\log \sum_i \exp(A_i)` along ``axis`` without overflow.

    The maximum is subtracted before exponentiating; an all ``-inf`` slice
    gives ``-inf`` rather than NaN.

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.vector(dtype="float32")
    >>> big = np.array([1000.0, 1000.0], dtype="float32")
    >>> round(float(log_sum_exp(x).eval({x: big})), 2)
    1000.69
    """
    A = pt.as_tensor_variable(A)
    # Clamping the shift into the finite range keeps an all -inf slice at
    # -inf (instead of -inf - -inf = NaN). The shift cancels exactly in value
    # and in gradient, so it is hidden from grad.
    info = np.finfo(A.dtype)
    A_max = pt.clip(pt.max(A, axis=axis, keepdims=True), info.min, info.max)
    A_max = zero_grad(A_max)
    out = pt.log(pt.sum(pt.exp(A - A_max), axis=axis, keepdims=True)) + A_max
    if keepdims:
        return out
    if axis is None:
        return out.reshape(())
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(a % A.ndim for a in axes)
    return out.squeeze(axis=axes)


def mean(x, axis=None):
    """Mean of ``x`` along ``axis``, in ``x``'s own float dtype.

    The count is cast to ``x.dtype`` before dividing, so every backend keeps
    a float32 graph in float32 (JAX with 64-bit mode would otherwise promote
    a float32 sum divided by an int64 count to float64).

    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.matrix(dtype="float32")
    >>> mean(x, axis=0).eval({x: np.array([[1.0, 2.0], [3.0, 6.0]], "float32")})
    array([2., 4.], dtype=float32)
    """
    x = pt.as_tensor_variable(x)
    if axis is None:
        count = x.size
    else:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        count = 1
        for a in axes:
            count = count * x.shape[a]
    return x.sum(axis=axis) / pt.cast(count, x.dtype)
