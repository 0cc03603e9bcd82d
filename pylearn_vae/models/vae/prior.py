r"""Priors :math:`p_\theta(\mathbf{z})` on the latent vector."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor.tensor as pt

from pylearn_vae.expr.basic import log_sum_exp
from pylearn_vae.expr.probability import (
    log_diag_gaussian,
    log_mixture_of_diag_gaussians,
    log_softmax,
)
from pylearn_vae.models.model import Model
from pylearn_vae.models.vae.component import VAEComponent
from pylearn_vae.utils import check_positive_int, sharedX

__all__ = ["Prior", "DiagonalGaussianPrior", "MixtureOfGaussiansPrior", "VampPrior"]


class Prior(VAEComponent, Model):
    r"""Base class of priors :math:`p_\theta(\mathbf{z})`.

    A prior belongs to exactly one VAE (:meth:`set_vae`, which needs only
    the VAE's ``rng`` and ``batch_size``), which then calls
    :meth:`initialize_parameters` with the latent dimension.
    """

    def __init__(self) -> None:
        super().__init__()
        self._init_vae_slots()
        self.nhid: int | None = None

    def _noise_name(self) -> str:
        return "prior"

    def initialize_parameters(self, nhid: int) -> None:
        """Allocate parameters for a latent space of dimension ``nhid``."""
        self.nhid = int(nhid)

    def get_theta(self) -> tuple:
        """Return the tuple of (symbolic) prior parameters."""
        return tuple(self.get_params())

    def sample_from_p_z(self, num_samples, **kwargs):
        """Draw ``num_samples`` latent vectors from the prior (symbolic)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement sample_from_p_z")

    def log_p_z(self, z):
        """Log-density of ``z`` (summed over the last axis)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement log_p_z")

    def monitoring_channels_from_prior_params(self) -> OrderedDict:
        """Monitoring channels computed from the prior's parameters (none)."""
        return OrderedDict()


class DiagonalGaussianPrior(Prior):
    r"""Gaussian prior with learnable mean and diagonal log standard deviation.

    .. math::
        p_\theta(\mathbf{z}) = \prod_i \mathcal{N}(z_i \mid \mu_i, \sigma_i^2)

    Both start at the standard normal (:math:`\mu = 0, \log\sigma = 0`);
    whether they are trained is decided by the VAE's ``learn_prior``. The
    shared variables are ``prior_mu`` and ``log_prior_sigma`` (Pylearn2's
    attribute names; ``mu`` and ``log_sigma`` are read-only aliases).
    """

    def __init__(self) -> None:
        super().__init__()
        self.prior_mu = None
        self.log_prior_sigma = None

    def __setstate__(self, state: dict) -> None:
        # Earlier pylearn_vae pickles named the parameters ``mu``/``log_sigma``.
        state = dict(state)
        for old, new in (("mu", "prior_mu"), ("log_sigma", "log_prior_sigma")):
            if old in state:
                state[new] = state.pop(old)
        super().__setstate__(state)

    @property
    def mu(self):
        """Alias of ``prior_mu``."""
        return self.prior_mu

    @property
    def log_sigma(self):
        """Alias of ``log_prior_sigma``."""
        return self.log_prior_sigma

    def initialize_parameters(self, nhid: int) -> None:
        super().initialize_parameters(nhid)
        self.prior_mu = sharedX(np.zeros(self.nhid), name="prior_mu")
        self.log_prior_sigma = sharedX(np.zeros(self.nhid), name="prior_log_sigma")
        self._params = [self.prior_mu, self.log_prior_sigma]

    def sample_from_p_z(self, num_samples, **kwargs):
        noise = self._require_srng().normal(size=(num_samples, self.nhid))
        return self.prior_mu + pt.exp(self.log_prior_sigma) * noise

    def log_p_z(self, z):
        return log_diag_gaussian(z, self.prior_mu, self.log_prior_sigma)


def _select(one_hot, table):
    """Rows of ``table`` (K, d) picked by ``one_hot`` (n, K): shape (n, d)."""
    return pt.dot(one_hot, table)


def _one_hot_from_uniform(u, cumulative):
    """One-hot rows (n, K) of the category each uniform ``u`` (n, 1) falls in.

    ``cumulative`` holds the K cumulative probabilities; the last is taken
    as 1 whatever its rounding.
    """
    k = cumulative.shape[0]
    index = pt.sum(pt.ge(u, cumulative[None, :-1]), axis=1)
    return pt.eq(index[:, None], pt.arange(k)[None, :]).astype(cumulative.dtype)


class MixtureOfGaussiansPrior(Prior):
    r"""Learnable mixture of ``num_components`` diagonal Gaussians (an addition).

    .. math::
        p_\theta(\mathbf{z}) = \sum_k \pi_k\,
            \mathcal{N}(\mathbf{z} \mid \boldsymbol\mu_k, \mathrm{diag}\,\boldsymbol\sigma_k^2),
        \qquad \pi = \mathrm{softmax}(\mathbf{a})

    Parameters: ``prior_means`` (K, nhid), drawn from a standard normal times
    ``init_spread`` with the VAE's generator; ``prior_log_sigmas`` (K, nhid),
    zero; ``prior_logits`` (K,), zero (equal weights). No closed-form KL
    exists between this prior and a Gaussian posterior, so the VAE estimates
    the KL term by Monte Carlo (``kl_by_monte_carlo``).
    """

    kl_by_monte_carlo = True

    def __init__(self, num_components: int = 10, init_spread: float = 1.0) -> None:
        super().__init__()
        self.num_components = check_positive_int(num_components, "num_components")
        self.init_spread = float(init_spread)
        if not np.isfinite(self.init_spread) or self.init_spread < 0:
            raise ValueError(f"init_spread must be a finite number >= 0, got {init_spread!r}")
        self.prior_means = self.prior_log_sigmas = self.prior_logits = None

    def initialize_parameters(self, nhid: int) -> None:
        super().initialize_parameters(nhid)
        k = self.num_components
        means = self.init_spread * self.rng.standard_normal((k, self.nhid))
        self.prior_means = sharedX(means, name="prior_means")
        self.prior_log_sigmas = sharedX(np.zeros((k, self.nhid)), name="prior_log_sigmas")
        self.prior_logits = sharedX(np.zeros(k), name="prior_logits")
        self._params = [self.prior_means, self.prior_log_sigmas, self.prior_logits]

    def log_weights(self):
        """Log mixture weights :math:`\\log \\pi_k`, shape (K,)."""
        return log_softmax(self.prior_logits)

    def log_p_z(self, z):
        return log_mixture_of_diag_gaussians(
            z, self.prior_means, self.prior_log_sigmas, self.log_weights()
        )

    def sample_from_p_z(self, num_samples, **kwargs):
        srng = self._require_srng()
        u = srng.uniform(size=(num_samples, 1))
        cumulative = pt.cumsum(pt.exp(self.log_weights()))
        one_hot = _one_hot_from_uniform(u, cumulative)
        mu = _select(one_hot, self.prior_means)
        sigma = pt.exp(_select(one_hot, self.prior_log_sigmas))
        return mu + sigma * srng.normal(size=(num_samples, self.nhid))

    def monitoring_channels_from_prior_params(self) -> OrderedDict:
        weights = pt.exp(self.log_weights())
        rval = OrderedDict()
        rval["prior_weight_max"] = weights.max()
        rval["prior_weight_min"] = weights.min()
        return rval


class VampPrior(Prior):
    r"""Mixture of the VAE's posterior at learnable pseudo-inputs (an addition).

    Tomczak and Welling's "variational mixture of posteriors" prior:

    .. math::
        p_\lambda(\mathbf{z}) = \frac1K \sum_k q_\phi(\mathbf{z} \mid \mathbf{u}_k)

    The K pseudo-inputs ``prior_pseudo_inputs`` (K, nvis) are parameters of
    the prior, start at ``init_mean`` plus normal noise of standard deviation
    ``init_std``, and are clipped to [0, 1] (the range of binarized data)
    where they are used. The posterior network is shared with the VAE, so
    this prior needs a real VAE (its ``posterior`` and ``nvis``) in
    :meth:`set_vae`. The KL term is estimated by Monte Carlo.
    """

    kl_by_monte_carlo = True

    def __init__(self, num_pseudo_inputs: int = 500, init_mean=0.05, init_std=0.01) -> None:
        super().__init__()
        self.num_pseudo_inputs = check_positive_int(num_pseudo_inputs, "num_pseudo_inputs")
        self.init_mean, self.init_std = float(init_mean), float(init_std)
        if not (np.isfinite(self.init_mean) and np.isfinite(self.init_std) and self.init_std >= 0):
            raise ValueError(
                f"init_mean and init_std must be finite and init_std >= 0, "
                f"got {init_mean!r} and {init_std!r}"
            )
        self.prior_pseudo_inputs = None

    def _posterior(self):
        posterior = getattr(self.vae, "posterior", None)
        if posterior is None or getattr(self.vae, "nvis", None) is None:
            raise RuntimeError(
                "VampPrior needs the VAE it belongs to (its posterior and nvis): "
                "use it as the prior of a VAE"
            )
        return posterior

    def initialize_parameters(self, nhid: int) -> None:
        super().initialize_parameters(nhid)
        self._posterior()
        shape = (self.num_pseudo_inputs, int(self.vae.nvis))
        values = self.init_mean + self.init_std * self.rng.standard_normal(shape)
        self.prior_pseudo_inputs = sharedX(values, name="prior_pseudo_inputs")
        self._params = [self.prior_pseudo_inputs]

    def pseudo_inputs(self):
        """The pseudo-inputs as the posterior sees them (clipped to [0, 1])."""
        return pt.clip(self.prior_pseudo_inputs, 0.0, 1.0)

    def components(self) -> tuple:
        """The posterior's parameters at each pseudo-input (each of shape (K, .))."""
        return tuple(self._posterior().encode_conditional_params(self.pseudo_inputs()))

    def log_p_z(self, z):
        posterior = self._posterior()
        per_component = posterior.log_conditional_pairwise(z, self.components())  # (..., K)
        log_k = np.log(self.num_pseudo_inputs).astype(per_component.dtype)
        return log_sum_exp(per_component, axis=-1) - log_k

    def sample_from_p_z(self, num_samples, **kwargs):
        srng = self._require_srng()
        k = self.num_pseudo_inputs
        u = srng.uniform(size=(num_samples, 1))
        cumulative = pt.as_tensor_variable(np.arange(1, k + 1) / k).astype(u.dtype)
        one_hot = _one_hot_from_uniform(u, cumulative)
        params = tuple(_select(one_hot, p) for p in self.components())
        return self._posterior().sample_from_conditional(params, num_samples=num_samples)
