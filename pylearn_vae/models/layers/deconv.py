r"""``Deconv``: a transposed (fractionally strided) convolution, for decoders.

Pylearn2 itself had no layer that goes back up from small feature maps to an
image. Its authors' own extension (the ``Deconv`` layer of the code released
with "Generative Adversarial Networks", built on cuda-convnet) did; this is
that layer under that name, with its arguments (``num_channels``,
``kernel_shape``, ``output_stride``, ``pad_out``, ``tied_b``, ...), computed
with :func:`pylearn_vae.expr.conv.conv2d_transpose` on every backend. It is
an addition to Pylearn2 (docs/differences.md).
"""

from __future__ import annotations

import numpy as np

from pylearn_vae.config.keywords import pylearn2_keywords
from pylearn_vae.expr.conv import conv2d_transpose, transpose_output_shape
from pylearn_vae.models.layers.conv import (
    IdentityConvNonlinearity,
    KernelLayer,
    check_nonlinearity,
    pair_of_ints,
)
from pylearn_vae.space import Conv2DSpace
from pylearn_vae.utils import whole_number

__all__ = ["Deconv"]

_BC01 = ("b", "c", 0, 1)


class Deconv(KernelLayer):
    r"""Transposed convolution plus bias, then an optional elementwise nonlinearity.

    Every input pixel adds its value times a kernel to a ``kernel_shape``
    block of the output; blocks start every ``output_stride`` pixels and
    ``pad_out`` rows and columns are then cut from each border:

    .. math::
        z_{b,o,\,s_0 r + p - d_0,\,s_1 c + q - d_1} \mathrel{+}= x_{b,i,r,c}\,W_{i,o,p,q},
        \qquad h = g(z + b)

    It is the adjoint (gradient) of a strided convolution, so an image of
    ``(rows - 1) * stride + kernel - 2 * pad_out`` rows comes out: kernel 4,
    stride 2 and ``pad_out`` 1 double the size (7x7 -> 14x14).

    Parameters
    ----------
    num_channels : int
        Output channels.
    kernel_shape : pair of int
        Kernel rows and columns.
    layer_name : str
        Name of the layer (prefixes its parameters' names).
    irange : float
        Kernels are initialised uniformly in ``[-irange, irange]``.
    init_bias : float
        Initial value of the biases.
    W_lr_scale, b_lr_scale : float, optional
        Learning-rate multipliers of the kernels and biases.
    pad_out : int
        Rows and columns cut from each border of the output.
    tied_b : bool
        One bias per channel (true) or one per channel and position.
    max_kernel_norm : float, optional
        Each output channel's kernels have their L2 norm clipped to this after every update.
    output_stride : pair of int
        Output pixels between the blocks of neighbouring input pixels.
    nonlinearity : object with ``apply(z)``, optional
        For instance :class:`~pylearn_vae.models.mlp.RectifierConvNonlinearity`;
        by default none (a linear layer, as the original).
    fix_kernel_shape, partial_sum
        Options of the cuda-convnet original that do not apply here; they
        must keep their defaults.
    """

    kernel_axes = (0, 2, 3)

    @pylearn2_keywords
    def __init__(
        self,
        num_channels: int,
        kernel_shape,
        layer_name: str,
        irange: float | None = None,
        init_bias: float = 0.0,
        W_lr_scale: float | None = None,
        b_lr_scale: float | None = None,
        pad_out: int = 0,
        fix_kernel_shape: bool = False,
        partial_sum: int = 1,
        tied_b: bool = False,
        max_kernel_norm: float | None = None,
        output_stride=(1, 1),
        nonlinearity=None,
    ) -> None:
        super().__init__(layer_name)
        if irange is None or float(irange) < 0:
            raise ValueError(
                f"layer {layer_name!r}: give irange >= 0 to initialise the kernels, got {irange!r}"
            )
        num_channels = whole_number(num_channels, 1, f"layer {layer_name!r}: num_channels")
        pad_out = whole_number(pad_out, 0, f"layer {layer_name!r}: pad_out")
        nonlinearity = IdentityConvNonlinearity() if nonlinearity is None else nonlinearity
        check_nonlinearity(nonlinearity, layer_name)
        self.num_channels = num_channels
        self.kernel_shape = pair_of_ints(kernel_shape, "kernel_shape", layer_name)
        self.output_stride = pair_of_ints(output_stride, "output_stride", layer_name)
        self.pad_out = pad_out
        self.irange = float(irange)
        self.init_bias = float(init_bias)
        self.W_lr_scale = W_lr_scale
        self.b_lr_scale = b_lr_scale
        self.max_kernel_norm = max_kernel_norm
        self.tied_b = bool(tied_b)
        self.nonlin = nonlinearity

    def set_input_space(self, space) -> None:
        """Allocate kernels and biases for feature maps of ``space`` (a Conv2DSpace)."""
        if not isinstance(space, Conv2DSpace):
            raise TypeError(
                f"layer {self.layer_name!r} (Deconv) expects a Conv2DSpace input, got {space!r}; "
                "put a SpaceConverter before it"
            )
        out_shape = transpose_output_shape(
            space.shape, self.kernel_shape, self.output_stride, (self.pad_out, self.pad_out)
        )
        if min(out_shape) < 1:
            raise ValueError(
                f"layer {self.layer_name!r}: pad_out={self.pad_out} leaves no output pixels for "
                f"a {tuple(space.shape)} input"
            )
        self.input_space = space
        self.output_space = Conv2DSpace(shape=out_shape, num_channels=self.num_channels, axes=_BC01)
        self.allocate(
            (space.num_channels, self.num_channels, *self.kernel_shape),
            self.num_channels,
            out_shape,
        )

    def get_weights_topo(self) -> np.ndarray:
        """Kernels as images: (input_channels, rows, cols, output_channels)."""
        return np.transpose(self.W.get_value(), (0, 2, 3, 1))

    def fprop(self, state_below):
        z = conv2d_transpose(
            self.bc01_input(state_below),
            self.W,
            output_shape=self.output_space.shape,
            filter_shape=self.kernel_shape,
            stride=self.output_stride,
            pad=(self.pad_out, self.pad_out),
        )
        return self.detector(z)
