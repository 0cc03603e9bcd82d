"""Affine layers: ``Linear`` and its elementwise-nonlinearity subclasses."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor.tensor as pt

from pylearn_vae.config.keywords import pylearn2_keywords
from pylearn_vae.models.layers.base import Layer
from pylearn_vae.space import CompositeSpace, Space, VectorSpace
from pylearn_vae.utils import constantX, floatX, sharedX

__all__ = ["Linear", "RectifiedLinear", "Sigmoid", "Tanh", "Softplus", "GatedLinear"]


class Linear(Layer):
    r"""Affine layer :math:`h = x W + b`.

    Parameters
    ----------
    dim : int
        Number of output units.
    layer_name : str
        Name; parameters are called ``<layer_name>_W`` and ``<layer_name>_b``.
    irange : float, optional
        Initialise ``W`` uniformly in ``[-irange, irange]``.
    istdev : float, optional
        Initialise ``W`` from a normal with this standard deviation.
        Exactly one of ``irange`` and ``istdev`` must be given.
    init_bias : float
        Initial value of every bias.
    W_lr_scale, b_lr_scale : float, optional
        Learning-rate multipliers for ``W`` and ``b``.
    max_col_norm, max_row_norm, min_col_norm : float, optional
        Norm constraints on ``W`` applied after every update.
    use_bias : bool
        Whether the layer has a bias.

    Other Pylearn2 keywords (``sparse_init``, ``include_prob``,
    ``mask_weights``, ``copy_input``, ``use_abs_loss``) are accepted and
    raise :class:`~pylearn_vae.errors.UnsupportedOptionError` when set.
    """

    @pylearn2_keywords
    def __init__(
        self,
        dim: int,
        layer_name: str,
        irange: float | None = None,
        istdev: float | None = None,
        sparse_init=None,
        sparse_stdev: float = 1.0,
        include_prob: float = 1.0,
        init_bias: float = 0.0,
        W_lr_scale: float | None = None,
        b_lr_scale: float | None = None,
        mask_weights=None,
        max_row_norm: float | None = None,
        max_col_norm: float | None = None,
        min_col_norm: float | None = None,
        copy_input=None,
        use_abs_loss: bool = False,
        use_bias: bool = True,
    ) -> None:
        super().__init__(layer_name)
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"layer {layer_name!r}: dim must be a positive integer, got {dim!r}")
        given = [name for name, v in (("irange", irange), ("istdev", istdev)) if v is not None]
        if len(given) != 1:
            raise ValueError(
                f"layer {layer_name!r}: give exactly one of 'irange' or 'istdev' to "
                f"initialise the weights (got {', '.join(given) or 'neither'})"
            )
        for key, value in (("irange", irange), ("istdev", istdev)):
            if value is not None and float(value) < 0:
                raise ValueError(f"layer {layer_name!r}: {key} must be >= 0, got {value}")
        self.dim = int(dim)
        self.irange = None if irange is None else float(irange)
        self.istdev = None if istdev is None else float(istdev)
        self.init_bias = float(init_bias)
        self.W_lr_scale = W_lr_scale
        self.b_lr_scale = b_lr_scale
        self.max_row_norm = max_row_norm
        self.max_col_norm = max_col_norm
        self.min_col_norm = min_col_norm
        self.use_bias = bool(use_bias)
        self.W = None
        self.b = None
        self._flat_space: VectorSpace | None = None

    def set_input_space(self, space) -> None:
        """Allocate parameters for inputs in ``space``.

        A :class:`VectorSpace` is used as is; other spaces (images in a
        ``Conv2DSpace``) are flattened to vectors in :meth:`fprop`.
        """
        if isinstance(space, CompositeSpace) or not isinstance(space, Space):
            raise TypeError(
                f"layer {self.layer_name!r} expects a VectorSpace or Conv2DSpace input, "
                f"got {space!r}"
            )
        self.input_space = space
        self._flat_space = VectorSpace(space.get_total_dimension())
        self.output_space = VectorSpace(self.dim)
        shape = (self._flat_space.dim, self.dim)
        rng = self.rng
        if self.irange is not None:
            W = rng.uniform(-self.irange, self.irange, shape)
        else:
            W = rng.randn(*shape) * self.istdev
        self.W = sharedX(W, name=f"{self.layer_name}_W")
        self._params = [self.W]
        if self.use_bias:
            self.b = sharedX(np.full(self.dim, self.init_bias), name=f"{self.layer_name}_b")
            self._params.append(self.b)

    def get_weights(self):
        return self.W.get_value()

    def get_lr_scalers(self) -> OrderedDict:
        rval = OrderedDict()
        if self.W_lr_scale is not None:
            rval[self.W] = float(self.W_lr_scale)
        if self.b_lr_scale is not None and self.b is not None:
            rval[self.b] = float(self.b_lr_scale)
        return rval

    def _modify_updates(self, updates) -> None:
        if self.W is None or self.W not in updates:
            return
        W = updates[self.W]
        eps = constantX(1e-7)
        if self.max_col_norm is not None or self.min_col_norm is not None:
            norms = pt.sqrt(pt.sqr(W).sum(axis=0))
            lo = constantX(0.0 if self.min_col_norm is None else self.min_col_norm)
            hi = constantX(np.inf if self.max_col_norm is None else self.max_col_norm)
            desired = pt.clip(norms, lo, hi)
            W = W * (desired / (eps + norms)).astype(floatX())
        if self.max_row_norm is not None:
            norms = pt.sqrt(pt.sqr(W).sum(axis=1))
            desired = pt.clip(norms, 0.0, constantX(self.max_row_norm))
            W = W * (desired / (eps + norms)).astype(floatX())[:, None]
        updates[self.W] = W

    def _affine(self, state_below):
        z = pt.dot(state_below, self.W)
        if self.b is not None:
            z = z + self.b
        return z

    def _nonlinearity(self, z):
        return z

    def fprop(self, state_below):
        if self.W is None:
            raise RuntimeError(
                f"layer {self.layer_name!r} has no parameters yet: its input space was never set"
            )
        state_below = self.input_space.format_as(state_below, self._flat_space)
        return self._nonlinearity(self._affine(state_below))


class RectifiedLinear(Linear):
    """Rectified linear units, with an optional slope for negative inputs."""

    def __init__(self, left_slope: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.left_slope = float(left_slope)

    def _nonlinearity(self, z):
        if self.left_slope == 0.0:
            return pt.maximum(z, 0.0)
        return pt.switch(z > 0.0, z, constantX(self.left_slope) * z)


class Sigmoid(Linear):
    """Logistic sigmoid units."""

    def __init__(self, monitor_style: str = "detection", **kwargs) -> None:
        super().__init__(**kwargs)
        if monitor_style not in ("detection", "one_hot_class", "bit_vector_class"):
            raise ValueError(
                f"Sigmoid {self.layer_name!r}: unknown monitor_style {monitor_style!r}"
            )
        self.monitor_style = monitor_style

    def _nonlinearity(self, z):
        return pt.sigmoid(z)


class Tanh(Linear):
    """Hyperbolic tangent units."""

    def _nonlinearity(self, z):
        return pt.tanh(z)


class Softplus(Linear):
    r"""Softplus units :math:`\log(1 + e^z)`."""

    def _nonlinearity(self, z):
        return pt.softplus(z)


class GatedLinear(Linear):
    r"""Gated linear units (an addition): :math:`h = (x W + b) \odot \sigma(x V + c)`.

    One matrix product computes both halves: ``<layer_name>_W`` has
    ``2 * dim`` columns (the linear part, then the gate) and
    ``<layer_name>_b`` ``2 * dim`` entries; ``init_bias`` sets the linear
    half's biases and ``gate_init_bias`` the gate's. The other keywords are
    ``Linear``'s (norm constraints apply to every column).
    """

    def __init__(self, gate_init_bias: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.gate_init_bias = float(gate_init_bias)

    def set_input_space(self, space) -> None:
        dim = self.dim
        self.dim = 2 * dim
        try:
            super().set_input_space(space)
        finally:
            self.dim = dim
        self.output_space = VectorSpace(dim)
        if self.b is not None:
            bias = self.b.get_value()
            bias[dim:] = self.gate_init_bias
            self.b.set_value(bias)

    def _nonlinearity(self, z):
        return z[:, : self.dim] * pt.sigmoid(z[:, self.dim :])
