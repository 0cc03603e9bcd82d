"""Convolutional layers: ``SpaceConverter``, ``ConvElemwise``, ``ConvRectifiedLinear``.

Images flow between layers in a :class:`~pylearn_vae.space.Conv2DSpace`
with axes ('b', 'c', 0, 1), as in Pylearn2. The maths lives in
:mod:`pylearn_vae.expr.conv`.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor.tensor as pt

from pylearn_vae.config.keywords import pylearn2_keywords
from pylearn_vae.expr.conv import (
    border_padding,
    conv2d,
    conv_output_shape,
    max_pool,
    mean_pool,
    pool_output_shape,
)
from pylearn_vae.models.layers.base import Layer
from pylearn_vae.space import Conv2DSpace, Space
from pylearn_vae.utils import constantX, floatX, sharedX, whole_number

__all__ = [
    "KernelLayer",
    "check_nonlinearity",
    "pair_of_ints",
    "SpaceConverter",
    "ConvElemwise",
    "ConvRectifiedLinear",
    "IdentityConvNonlinearity",
    "RectifierConvNonlinearity",
    "SigmoidConvNonlinearity",
    "TanhConvNonlinearity",
]

_BC01 = ("b", "c", 0, 1)


class SpaceConverter(Layer):
    """A parameter-free layer that reformats its input as ``output_space``.

    Parameters
    ----------
    layer_name : str
        Name of the layer.
    output_space : Space
        Space of the output; it must have as many dimensions as the input.
    """

    def __init__(self, layer_name: str, output_space) -> None:
        super().__init__(layer_name)
        if not isinstance(output_space, Space):
            raise TypeError(
                f"SpaceConverter {layer_name!r}: output_space must be a Space, got "
                f"{type(output_space).__name__}"
            )
        self.output_space = output_space

    def set_input_space(self, space) -> None:
        if space.get_total_dimension() != self.output_space.get_total_dimension():
            raise ValueError(
                f"SpaceConverter {self.layer_name!r} cannot turn {space} "
                f"({space.get_total_dimension()} dimensions) into {self.output_space} "
                f"({self.output_space.get_total_dimension()} dimensions)"
            )
        self.input_space = space

    def fprop(self, state_below):
        return self.input_space.format_as(state_below, self.output_space)


class IdentityConvNonlinearity:
    """No nonlinearity: the layer outputs its linear response."""

    elementwise = True  # see KernelLayer.detector

    def apply(self, linear_response):
        return linear_response


class RectifierConvNonlinearity:
    """Rectified linear units, slope ``left_slope`` for negative inputs."""

    elementwise = True  # see KernelLayer.detector

    def __init__(self, left_slope: float = 0.0) -> None:
        self.left_slope = float(left_slope)

    def apply(self, linear_response):
        if self.left_slope == 0.0:
            return pt.maximum(linear_response, 0.0)
        return pt.switch(
            linear_response > 0.0, linear_response, constantX(self.left_slope) * linear_response
        )


class SigmoidConvNonlinearity:
    """Logistic sigmoid units."""

    elementwise = True  # see KernelLayer.detector

    def __init__(self, monitor_style: str = "detection") -> None:
        self.monitor_style = monitor_style

    def apply(self, linear_response):
        return pt.sigmoid(linear_response)


class TanhConvNonlinearity:
    """Hyperbolic tangent units."""

    elementwise = True  # see KernelLayer.detector

    def apply(self, linear_response):
        return pt.tanh(linear_response)


def pair_of_ints(value, what: str, layer_name: str) -> tuple[int, int]:
    pair = tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in pair):
        raise ValueError(
            f"layer {layer_name!r}: {what} must be two positive integers, got {value!r}"
        )
    return (int(pair[0]), int(pair[1]))


def check_nonlinearity(nonlinearity, layer_name: str) -> None:
    """Refuse a ``nonlinearity`` without an ``apply(z)`` method."""
    if not hasattr(nonlinearity, "apply"):
        raise TypeError(
            f"layer {layer_name!r}: nonlinearity must have an apply(z) method, got "
            f"{type(nonlinearity).__name__}"
        )


class KernelLayer(Layer):
    """What convolution-like layers share: kernels ``W`` and biases ``b`` with
    learning-rate scales, kernel-norm clipping and kernel-norm monitoring.

    Subclasses set ``irange``, ``init_bias``, ``tied_b``, ``W_lr_scale``,
    ``b_lr_scale``, ``max_kernel_norm`` and :attr:`kernel_axes`, the axes of
    ``W`` that one output channel's kernel spans.
    """

    kernel_axes: tuple[int, ...] = (1, 2, 3)

    def __init__(self, layer_name: str) -> None:
        super().__init__(layer_name)
        self.W = None
        self.b = None
        self.irange = 0.0
        self.init_bias = 0.0
        self.tied_b = False
        self.W_lr_scale: float | None = None
        self.b_lr_scale: float | None = None
        self.max_kernel_norm: float | None = None

    def allocate(self, kernel_shape, channels: int, positions) -> None:
        """Create ``W`` (``kernel_shape``, uniform in ``[-irange, irange]``) and
        ``b`` (``init_bias``; one per channel if ``tied_b``, else one per
        channel and output position)."""
        W = self.rng.uniform(-self.irange, self.irange, kernel_shape)
        self.W = sharedX(W, name=f"{self.layer_name}_W")
        b_shape = (channels,) if self.tied_b else (channels, *positions)
        self.b = sharedX(np.full(b_shape, self.init_bias), name=f"{self.layer_name}_b")
        self._params = [self.W, self.b]

    def bc01_input(self, state_below):
        """``state_below`` (in the input space) as ('b', 'c', 0, 1) images."""
        if self.W is None:
            raise RuntimeError(
                f"layer {self.layer_name!r} has no parameters yet: its input space was never set"
            )
        self.input_space.validate(state_below)
        bc01 = Conv2DSpace(
            self.input_space.shape, num_channels=self.input_space.num_channels, axes=_BC01
        )
        return self.input_space.format_as(state_below, bc01)

    def add_bias(self, z):
        """``z`` (b, c, rows, cols) plus the tied or untied biases."""
        return z + (self.b[None, :, None, None] if self.tied_b else self.b[None])

    def detector(self, z):
        """The nonlinearity of ``z`` plus the biases.

        ``z`` is (b, c, rows, cols) as a view of a channels-last array, as the
        convolutions return it. An elementwise nonlinearity is applied to
        that array itself, so the result is again such a view and the next
        convolution reads it without a copy (PyTensor would otherwise
        allocate the result channels-first); any other nonlinearity gets
        (b, c, rows, cols), as in Pylearn2.
        """
        if not getattr(self.nonlin, "elementwise", False):
            return self.nonlin.apply(self.add_bias(z))
        b = self.b.dimshuffle("x", "x", "x", 0) if self.tied_b else self.b.dimshuffle("x", 1, 2, 0)
        return self.nonlin.apply(z.dimshuffle(0, 2, 3, 1) + b).dimshuffle(0, 3, 1, 2)

    def get_lr_scalers(self) -> OrderedDict:
        rval = OrderedDict()
        if self.W_lr_scale is not None:
            rval[self.W] = float(self.W_lr_scale)
        if self.b_lr_scale is not None:
            rval[self.b] = float(self.b_lr_scale)
        return rval

    def _modify_updates(self, updates) -> None:
        if self.max_kernel_norm is None or self.W is None or self.W not in updates:
            return
        W = updates[self.W]
        norms = pt.sqrt(pt.sqr(W).sum(axis=self.kernel_axes))
        desired = pt.clip(norms, 0.0, constantX(self.max_kernel_norm))
        scale = (desired / (constantX(1e-7) + norms)).astype(floatX())
        pattern = ["x" if axis in self.kernel_axes else 0 for axis in range(4)]
        updates[self.W] = W * scale.dimshuffle(*pattern)

    def get_monitoring_channels(self) -> OrderedDict:
        """``kernel_norms_min``, ``kernel_norms_mean`` and ``kernel_norms_max``."""
        norms = pt.sqrt(pt.sqr(self.W).sum(axis=self.kernel_axes))
        return OrderedDict(
            [
                ("kernel_norms_min", norms.min()),
                ("kernel_norms_mean", norms.mean()),
                ("kernel_norms_max", norms.max()),
            ]
        )


def _check_conv_options(
    layer_name: str, irange, nonlinearity, border_mode, pool_type, monitor_style
) -> None:
    """Refuse the :class:`ConvElemwise` options that are not usable as given."""
    if irange is None:
        raise ValueError(f"layer {layer_name!r}: give irange to initialise the kernels")
    if float(irange) < 0:
        raise ValueError(f"layer {layer_name!r}: irange must be >= 0, got {irange}")
    check_nonlinearity(nonlinearity, layer_name)
    try:
        border_padding(border_mode, (1, 1))
    except ValueError as exc:
        raise ValueError(f"layer {layer_name!r}: {exc}") from None
    if pool_type not in (None, "max", "mean"):
        raise ValueError(
            f"layer {layer_name!r}: pool_type must be 'max', 'mean' or None, got {pool_type!r}"
        )
    if monitor_style not in ("classification", "detection"):
        raise ValueError(
            f"layer {layer_name!r}: monitor_style must be 'classification' or 'detection', "
            f"got {monitor_style!r}"
        )


def _pool_geometry(pool_type, pool_shape, pool_stride, layer_name: str):
    """``(pool_shape, pool_stride)`` as pairs of ints, or ``(None, None)`` without pooling."""
    if pool_type is None:
        return None, None
    if pool_shape is None or pool_stride is None:
        raise ValueError(
            f"layer {layer_name!r}: pool_type {pool_type!r} needs pool_shape and pool_stride"
        )
    return (
        pair_of_ints(pool_shape, "pool_shape", layer_name),
        pair_of_ints(pool_stride, "pool_stride", layer_name),
    )


class ConvElemwise(KernelLayer):
    r"""Convolution, bias, elementwise nonlinearity, then optional pooling.

    .. math::
        h = \mathrm{pool}\big(g(W * x + b)\big)

    with :math:`*` the 2-d convolution of :func:`pylearn_vae.expr.conv.conv2d`.

    Parameters
    ----------
    output_channels : int
        Number of kernels (output channels).
    kernel_shape : pair of int
        Kernel rows and columns.
    layer_name : str
        Name of the layer (prefixes its parameters' names).
    nonlinearity : object with ``apply(z)``
        For instance :class:`RectifierConvNonlinearity`.
    irange : float
        Kernels are initialised uniformly in ``[-irange, irange]``.
    border_mode : {'valid', 'full', 'half'}, int or pair of int
        Zero padding of the input, as Theano's ``conv2d`` took it.
    init_bias : float
        Initial value of the biases.
    W_lr_scale, b_lr_scale : float, optional
        Learning-rate multipliers of the kernels and biases.
    max_kernel_norm : float, optional
        Each kernel's L2 norm is clipped to this value after every update.
    pool_type : {None, 'max', 'mean'}
        Spatial pooling of the detector output.
    pool_shape, pool_stride : pair of int
        Pooling window and stride (required with ``pool_type``).
    tied_b : bool
        One bias per channel (true) or one per channel and position.
    kernel_stride : pair of int
        Stride of the convolution.
    monitor_style : {'classification', 'detection'}
        Accepted for Pylearn2 compatibility.
    sparse_init, include_prob, detector_normalization, output_normalization
        Pylearn2 options that are not implemented (must keep their defaults).
    """

    @pylearn2_keywords
    def __init__(
        self,
        output_channels: int,
        kernel_shape,
        layer_name: str,
        nonlinearity,
        irange: float | None = None,
        border_mode: str = "valid",
        sparse_init=None,
        include_prob: float = 1.0,
        init_bias: float = 0.0,
        W_lr_scale: float | None = None,
        b_lr_scale: float | None = None,
        max_kernel_norm: float | None = None,
        pool_type: str | None = None,
        pool_shape=None,
        pool_stride=None,
        tied_b=None,
        detector_normalization=None,
        output_normalization=None,
        kernel_stride=(1, 1),
        monitor_style: str = "classification",
    ) -> None:
        super().__init__(layer_name)
        _check_conv_options(layer_name, irange, nonlinearity, border_mode, pool_type, monitor_style)
        self.output_channels = whole_number(
            output_channels, 1, f"layer {layer_name!r}: output_channels"
        )
        self.kernel_shape = pair_of_ints(kernel_shape, "kernel_shape", layer_name)
        self.kernel_stride = pair_of_ints(kernel_stride, "kernel_stride", layer_name)
        self.nonlin = nonlinearity
        self.irange = float(irange)
        self.border_mode = border_mode
        self.init_bias = float(init_bias)
        self.W_lr_scale = W_lr_scale
        self.b_lr_scale = b_lr_scale
        self.max_kernel_norm = max_kernel_norm
        self.pool_type = pool_type
        self.pool_shape, self.pool_stride = _pool_geometry(
            pool_type, pool_shape, pool_stride, layer_name
        )
        self.tied_b = bool(tied_b)
        self.monitor_style = monitor_style
        self.detector_space: Conv2DSpace | None = None

    def set_input_space(self, space) -> None:
        """Allocate the kernels and biases for images of ``space`` (a Conv2DSpace)."""
        if not isinstance(space, Conv2DSpace):
            raise TypeError(
                f"layer {self.layer_name!r} ({type(self).__name__}) expects a Conv2DSpace input, "
                f"got {space!r}; put a SpaceConverter before it"
            )
        self.input_space = space
        detector_shape = conv_output_shape(
            space.shape, self.kernel_shape, self.kernel_stride, self.border_mode
        )
        self.detector_space = Conv2DSpace(
            shape=detector_shape, num_channels=self.output_channels, axes=_BC01
        )
        if self.pool_type is None:
            out_shape = detector_shape
        else:
            out_shape = pool_output_shape(detector_shape, self.pool_shape, self.pool_stride)
        self.output_space = Conv2DSpace(
            shape=out_shape, num_channels=self.output_channels, axes=_BC01
        )
        self.allocate(
            (self.output_channels, space.num_channels, *self.kernel_shape),
            self.output_channels,
            detector_shape,
        )

    def get_weights_topo(self) -> np.ndarray:
        """Kernels as images: (output_channels, rows, cols, input_channels)."""
        return np.transpose(self.W.get_value(), (0, 2, 3, 1))

    def fprop(self, state_below):
        x = self.bc01_input(state_below)
        z = conv2d(
            x,
            self.W,
            image_shape=self.input_space.shape,
            filter_shape=self.kernel_shape,
            stride=self.kernel_stride,
            border_mode=self.border_mode,
        )
        d = self.detector(z)
        if self.pool_type == "max":
            return max_pool(d, self.pool_shape, self.pool_stride, self.detector_space.shape)
        if self.pool_type == "mean":
            return mean_pool(d, self.pool_shape, self.pool_stride, self.detector_space.shape)
        return d


class ConvRectifiedLinear(ConvElemwise):
    """:class:`ConvElemwise` with rectified linear units and max pooling by default.

    Takes Pylearn2's arguments (``output_channels``, ``kernel_shape``,
    ``pool_shape``, ``pool_stride``, ``layer_name``, ``irange``, ...,
    ``left_slope``, ``pool_type='max'``, ``tied_b=False``,
    ``kernel_stride``); see :class:`ConvElemwise` for their meaning.
    """

    def __init__(
        self,
        output_channels: int,
        kernel_shape,
        pool_shape,
        pool_stride,
        layer_name: str,
        irange: float | None = None,
        border_mode: str = "valid",
        sparse_init=None,
        include_prob: float = 1.0,
        init_bias: float = 0.0,
        W_lr_scale: float | None = None,
        b_lr_scale: float | None = None,
        left_slope: float = 0.0,
        max_kernel_norm: float | None = None,
        pool_type: str | None = "max",
        tied_b: bool = False,
        detector_normalization=None,
        output_normalization=None,
        kernel_stride=(1, 1),
        monitor_style: str = "classification",
    ) -> None:
        super().__init__(
            output_channels=output_channels,
            kernel_shape=kernel_shape,
            layer_name=layer_name,
            nonlinearity=RectifierConvNonlinearity(left_slope),
            irange=irange,
            border_mode=border_mode,
            sparse_init=sparse_init,
            include_prob=include_prob,
            init_bias=init_bias,
            W_lr_scale=W_lr_scale,
            b_lr_scale=b_lr_scale,
            max_kernel_norm=max_kernel_norm,
            pool_type=pool_type,
            pool_shape=pool_shape,
            pool_stride=pool_stride,
            tied_b=tied_b,
            detector_normalization=detector_normalization,
            output_normalization=output_normalization,
            kernel_stride=kernel_stride,
            monitor_style=monitor_style,
        )
        self.left_slope = float(left_slope)
