r"""Priors :math:`p_\theta(\mathbf{z})` on the latent vector."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor.tensor as pt

from pylearn_vae.expr.probability import log_diag_gaussian
from pylearn_vae.models.model import Model
from pylearn_vae.models.vae.component import VAEComponent
from pylearn_vae.utils import sharedX

__all__ = ["Prior", "DiagonalGaussianPrior"]


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
