r"""Conditional distributions: :math:`p_\theta(\mathbf{x}\mid\mathbf{z})` and
:math:`q_\phi(\mathbf{z}\mid\mathbf{x})`.

A :class:`Conditional` maps its input through a nested MLP to the
parameters of a distribution, samples from it (with or without the
reparametrization trick) and scores samples. Every method broadcasts over
a leading samples axis: parameters of shape ``(batch, ndim)`` combine with
samples or noise of shape ``(num_samples, batch, ndim)``.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor.tensor as pt

from pylearn_vae.expr.basic import mean
from pylearn_vae.expr.probability import (
    log_bernoulli,
    log_diag_gaussian,
    pairwise_log_diag_gaussian,
)
from pylearn_vae.models.layers import CompositeLayer, Linear
from pylearn_vae.models.mlp import MLP
from pylearn_vae.models.model import Model
from pylearn_vae.models.vae.component import VAEComponent
from pylearn_vae.space import CompositeSpace, VectorSpace
from pylearn_vae.utils import check_positive_int, floatX

__all__ = [
    "Conditional",
    "BernoulliVector",
    "DiagonalGaussian",
    "HouseholderFlowGaussian",
    "householder",
]


class Conditional(VAEComponent, Model):
    """Base class of conditional distributions in the VAE framework.

    Parameters
    ----------
    mlp : pylearn_vae.models.mlp.MLP
        A *nested* MLP (built without ``nvis`` or ``input_space``) mapping
        the conditioning variable to the distribution's parameters.
    name : str
        Identifier, e.g. ``'conditional'`` or ``'posterior'``; it prefixes
        parameter names and monitoring channels.
    output_layer_required : bool
        If true, the MLP ends at its last hidden layer and this class adds
        its default output layer. If false, the MLP's last layer must
        already output the distribution's parameters.
    """

    def __init__(self, mlp, name: str, output_layer_required: bool = True) -> None:
        super().__init__()
        if not isinstance(mlp, MLP):
            raise TypeError(
                f"{type(self).__name__} {name!r} expects an MLP, got {type(mlp).__name__}"
            )
        if not mlp._nested:
            raise ValueError(
                f"{type(self).__name__} {name!r} expects an MLP whose input space has not "
                "been defined yet: do not give 'nvis' or 'input_space' to that MLP, the "
                "VAE sets it"
            )
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"{type(self).__name__}: name must be a non-empty string, got {name!r}"
            )
        self.mlp = mlp
        self.name = name
        self.output_layer_required = bool(output_layer_required)
        self._init_vae_slots()
        self.ndim: int | None = None

    # -- wiring ----------------------------------------------------------
    def _noise_name(self) -> str:
        return self.name

    def initialize_parameters(self, input_space, ndim: int) -> None:
        """Build the MLP for inputs in ``input_space`` and ``ndim`` outputs."""
        self.ndim = int(ndim)
        self.input_space = input_space
        if self.output_layer_required:
            self.mlp.add_layers([self._get_default_output_layer()])
        self.mlp.set_mlp(self)
        self.mlp.set_input_space(input_space)
        self._validate_mlp()
        self._params = self.mlp.get_params()
        for param in self._params:
            param.name = f"{self.name}_{param.name}"

    def _get_default_output_layer(self):
        raise NotImplementedError(f"{type(self).__name__} does not define a default output layer")

    def _get_required_mlp_output_space(self):
        raise NotImplementedError(
            f"{type(self).__name__} does not define its required MLP output space"
        )

    def _validate_mlp(self) -> None:
        expected = self._get_required_mlp_output_space()
        received = self.mlp.get_output_space()
        if received != expected:
            hint = (
                ""
                if self.output_layer_required
                else " (with output_layer_required=False the MLP's last layer must produce "
                "the distribution's parameters)"
            )
            raise ValueError(
                f"the MLP of {type(self).__name__} {self.name!r} outputs {received!r} but "
                f"{type(self).__name__} needs {expected!r}{hint}"
            )

    # -- parameters ------------------------------------------------------
    def get_lr_scalers(self) -> OrderedDict:
        return self.mlp.get_lr_scalers()

    def _modify_updates(self, updates) -> None:
        self.mlp.modify_updates(updates)

    def get_weights(self):
        return self.mlp.get_weights()

    # -- distribution ----------------------------------------------------
    def encode_conditional_params(self, X) -> tuple:
        """Map ``X`` to the tuple of the distribution's parameters."""
        params = self.mlp.fprop(X)
        return params if isinstance(params, tuple) else (params,)

    def conditional_expectation(self, conditional_params):
        """Expected value of the distribution with these parameters."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement conditional_expectation"
        )

    def sample_from_conditional(self, conditional_params, epsilon=None, num_samples=None):
        """Draw samples; with ``epsilon``, use the reparametrization trick."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement sample_from_conditional"
        )

    def sample_from_epsilon(self, shape):
        """Draw the canonical noise used by the reparametrization trick."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot sample with the reparametrization trick "
            "(it does not implement sample_from_epsilon)"
        )

    def log_conditional(self, samples, conditional_params):
        """Log-probability of ``samples`` (summed over the last axis)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement log_conditional")

    def log_conditional_pairwise(self, samples, conditional_params):
        """Log-probability of every sample under every one of K parameter sets.

        ``samples`` has shape (..., d) and each parameter a leading axis of
        K (one row per distribution); the result has shape (..., K). This
        default broadcasts :meth:`log_conditional` over a (..., K, d)
        tensor; subclasses with a cheaper exact form override it (a
        mixture prior over K components calls it every step).
        """
        return self.log_conditional(samples[..., None, :], conditional_params)

    def monitoring_channels_from_conditional_params(self, conditional_params) -> OrderedDict:
        """Monitoring channels computed from the parameters (none by default)."""
        return OrderedDict()


class BernoulliVector(Conditional):
    r"""Independent Bernoulli units; the parameters are pre-sigmoid activations.

    .. math::
        p(\mathbf{a}\mid\mathbf{b}) = \prod_i \sigma(s_i)^{a_i} (1 - \sigma(s_i))^{1 - a_i},
        \qquad \mathbf{s} = \mathrm{MLP}(\mathbf{b})
    """

    def _get_default_output_layer(self):
        return Linear(dim=self.ndim, layer_name="mu", irange=0.01)

    def _get_required_mlp_output_space(self):
        return VectorSpace(dim=self.ndim)

    def sample_from_conditional(self, conditional_params, epsilon=None, num_samples=None):
        if epsilon is not None:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} cannot sample with the "
                "reparametrization trick: binary samples are not a differentiable "
                "function of noise. Call it without epsilon."
            )
        if num_samples is None:
            raise ValueError("BernoulliVector.sample_from_conditional needs num_samples")
        (S,) = conditional_params
        u = self._require_srng().uniform(size=S.shape)
        return pt.lt(u, pt.sigmoid(S)).astype(floatX())

    def conditional_expectation(self, conditional_params):
        return pt.sigmoid(conditional_params[0])

    def log_conditional(self, samples, conditional_params):
        return log_bernoulli(samples, conditional_params[0])


class DiagonalGaussian(Conditional):
    r"""Gaussian with diagonal covariance: mean and log standard deviation heads.

    .. math::
        f(\mathbf{a}\mid\mathbf{b}) = \prod_i \mathcal{N}(a_i \mid \mu_i(\mathbf{b}),
        \sigma_i(\mathbf{b})^2)

    Reparametrized samples are :math:`\mu + \sigma \odot \epsilon` with
    standard normal :math:`\epsilon`.

    ``log_sigma_range`` (an addition; default none) is a pair ``[low, high]``
    that bounds :math:`\log\sigma`: the network's output is clipped to it,
    as Tomczak and Welling's VampPrior models clip the log-variance to
    [-6, 2] (``[-3, 1]`` here). A clipped value passes no gradient.
    """

    #: (class default: models pickled before the keyword existed have no clipping)
    log_sigma_range = None

    def __init__(
        self, mlp, name: str, output_layer_required: bool = True, log_sigma_range=None
    ) -> None:
        super().__init__(mlp, name, output_layer_required=output_layer_required)
        self.log_sigma_range = _log_sigma_range(log_sigma_range, type(self).__name__, name)

    def __setstate__(self, state: dict) -> None:
        # A pickled model's range is checked as the constructor checks it.
        super().__setstate__(state)
        if "log_sigma_range" in self.__dict__:
            self.log_sigma_range = _log_sigma_range(
                self.__dict__["log_sigma_range"], type(self).__name__, self.__dict__.get("name")
            )

    def encode_conditional_params(self, X) -> tuple:
        params = super().encode_conditional_params(X)
        if self.log_sigma_range is None:
            return params
        mu, log_sigma, *rest = params
        low, high = (np.asarray(bound, dtype=log_sigma.dtype) for bound in self.log_sigma_range)
        return (mu, pt.clip(log_sigma, low, high), *rest)

    def _get_default_output_layer(self):
        return CompositeLayer(
            layer_name="conditional",
            layers=[
                Linear(dim=self.ndim, layer_name="mu", irange=0.01),
                Linear(dim=self.ndim, layer_name="log_sigma", irange=0.01),
            ],
        )

    def _get_required_mlp_output_space(self):
        return CompositeSpace([VectorSpace(dim=self.ndim), VectorSpace(dim=self.ndim)])

    def monitoring_channels_from_conditional_params(self, conditional_params) -> OrderedDict:
        _, log_sigma = conditional_params
        sigma = pt.exp(log_sigma)
        rval = OrderedDict()
        rval[f"{self.name}_sigma_min"] = sigma.min()
        rval[f"{self.name}_sigma_max"] = sigma.max()
        sigma_mean = mean(sigma)
        rval[f"{self.name}_sigma_mean"] = sigma_mean
        rval[f"{self.name}_sigma_std"] = pt.sqrt(mean(pt.sqr(sigma - sigma_mean)))
        return rval

    def sample_from_epsilon(self, shape):
        return self._require_srng().normal(size=shape)

    def sample_from_conditional(self, conditional_params, epsilon=None, num_samples=None):
        mu, log_sigma = conditional_params
        if epsilon is None:
            if num_samples is None:
                raise ValueError("DiagonalGaussian.sample_from_conditional needs num_samples")
            epsilon = self.sample_from_epsilon(mu.shape)
        return mu + pt.exp(log_sigma) * epsilon

    def conditional_expectation(self, conditional_params):
        return conditional_params[0]

    def log_conditional(self, samples, conditional_params):
        mu, log_sigma = conditional_params
        return log_diag_gaussian(samples, mu, log_sigma)

    def log_conditional_pairwise(self, samples, conditional_params):
        mu, log_sigma = conditional_params
        return pairwise_log_diag_gaussian(samples, mu, log_sigma)


#: The widest ``log_sigma_range`` (sigma from about 1e-13 to 1e13).
MAX_ABS_LOG_SIGMA = 30.0


def _log_sigma_range(value, kind: str, name: str):
    """``value`` as a pair of floats ``(low, high)`` in [-30, 30] with low < high
    (also in float32), or None."""
    if value is None:
        return None
    where = f"{kind} {name!r} log_sigma_range"
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"{where} must be a pair [low, high], got {value!r}")
    bounds = []
    for bound in value:
        if isinstance(bound, bool) or not isinstance(bound, (int, float, np.integer, np.floating)):
            raise ValueError(f"{where} must hold two numbers, got {value!r}")
        if not -MAX_ABS_LOG_SIGMA <= bound <= MAX_ABS_LOG_SIGMA:  # (NaN fails too)
            raise ValueError(
                f"{where} must hold two numbers from {-MAX_ABS_LOG_SIGMA:g} to "
                f"{MAX_ABS_LOG_SIGMA:g}, got {value!r}"
            )
        bounds.append(float(bound))
    if not np.float32(bounds[0]) < np.float32(bounds[1]):
        raise ValueError(f"{where} needs low < high (also in float32), got {value!r}")
    return tuple(bounds)


def householder(z, v):
    r"""The reflection :math:`H_v z = z - 2\,v\,(v \cdot z) / (v \cdot v)` along the last axis.

    ``v`` broadcasts against ``z`` (a leading samples axis on ``z`` works).
    :math:`H_v` is orthogonal and its own inverse.
    """
    tiny = np.asarray(np.finfo(floatX()).tiny, dtype=floatX())
    scale = 2.0 * (z * v).sum(axis=-1, keepdims=True) / ((v * v).sum(axis=-1, keepdims=True) + tiny)
    return z - scale * v


class HouseholderFlowGaussian(DiagonalGaussian):
    r"""Diagonal Gaussian followed by ``num_flows`` Householder reflections (an addition).

    Tomczak and Welling's Householder flow: with :math:`\mathbf{z}_0 = \mu +
    \sigma \odot \epsilon`, the sample is :math:`\mathbf{z}_T = H_T \cdots
    H_1 \mathbf{z}_0`, where each :math:`H_t` reflects along a vector
    :math:`\mathbf{v}_t` that the network outputs for each example. The
    reflections are orthogonal (volume-preserving), so
    :math:`\log q(\mathbf{z}_T) = \log \mathcal{N}(\mathbf{z}_0 \mid \mu,
    \sigma^2)` with :math:`\mathbf{z}_0 = H_1 \cdots H_T \mathbf{z}_T`, and
    the posterior is a Gaussian with a full covariance
    :math:`H \Sigma H^\top`. Its KL term is estimated by Monte Carlo.

    The network's output layer has ``2 + num_flows`` heads (``mu``,
    ``log_sigma``, ``flow_1`` ...); with ``output_layer_required=False``
    the MLP's last layer must produce them.
    """

    kl_by_monte_carlo = True

    def __init__(
        self,
        mlp,
        name: str,
        num_flows: int = 1,
        output_layer_required: bool = True,
        log_sigma_range=None,
    ) -> None:
        self.num_flows = check_positive_int(
            num_flows, f"HouseholderFlowGaussian {name!r} num_flows"
        )
        super().__init__(
            mlp, name, output_layer_required=output_layer_required, log_sigma_range=log_sigma_range
        )

    def _get_default_output_layer(self):
        gaussian = super()._get_default_output_layer()
        flows = [
            Linear(dim=self.ndim, layer_name=f"flow_{t + 1}", irange=0.01)
            for t in range(self.num_flows)
        ]
        return CompositeLayer(layer_name="conditional", layers=[*gaussian.layers, *flows])

    def _get_required_mlp_output_space(self):
        return CompositeSpace([VectorSpace(dim=self.ndim)] * (2 + self.num_flows))

    def _forward(self, z, flows):
        for v in flows:
            z = householder(z, v)
        return z

    def _backward(self, z, flows):
        for v in reversed(flows):
            z = householder(z, v)
        return z

    def monitoring_channels_from_conditional_params(self, conditional_params) -> OrderedDict:
        return super().monitoring_channels_from_conditional_params(conditional_params[:2])

    def sample_from_conditional(self, conditional_params, epsilon=None, num_samples=None):
        z0 = super().sample_from_conditional(conditional_params[:2], epsilon, num_samples)
        return self._forward(z0, conditional_params[2:])

    def conditional_expectation(self, conditional_params):
        return self._forward(conditional_params[0], conditional_params[2:])

    def log_conditional(self, samples, conditional_params):
        z0 = self._backward(samples, conditional_params[2:])
        return super().log_conditional(z0, conditional_params[:2])

    def log_conditional_pairwise(self, samples, conditional_params):
        if self.num_flows > 1:  # no closed pairwise form written for more reflections
            return Conditional.log_conditional_pairwise(self, samples, conditional_params)
        mu, log_sigma, v = conditional_params
        return pairwise_log_diag_gaussian(samples, mu, log_sigma, reflect_along=v)
