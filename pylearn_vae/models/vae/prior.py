r"""Priors :math:`p_\theta(\mathbf{z})` on the latent vector."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor.tensor as pt

from pylearn_vae.expr.probability import log_diag_gaussian
from pylearn_vae.models.model import Model
from pylearn_vae.utils import sharedX

__all__ = ["Prior", "DiagonalGaussianPrior"]


class Prior(Model):
    r"""Base class of priors :math:`p_\theta(\mathbf{z})`.

    A prior belongs to exactly one VAE (:meth:`set_vae`), which then calls
    :meth:`initialize_parameters` with the latent dimension.
    """

    def __init__(self) -> None:
        super().__init__()
        self._vae = None
        self.nhid: int | None = None
        self.rng = None
        self.srng = None
        self.batch_size = None

    def get_vae(self):
        """Return the VAE this prior belongs to, or None."""
        return self._vae

    def set_vae(self, vae) -> None:
        """Attach this prior to ``vae``; a prior can belong to one VAE only."""
        if self._vae is not None:
            raise RuntimeError(
                f"this {type(self).__name__} instance already belongs to another VAE"
            )
        self._vae = vae
        self.rng = vae.rng
        self.srng = vae.srng.spawn("prior")
        self.batch_size = vae.batch_size

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
    whether they are trained is decided by the VAE's ``learn_prior``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.mu = None
        self.log_sigma = None

    def initialize_parameters(self, nhid: int) -> None:
        super().initialize_parameters(nhid)
        self.mu = sharedX(np.zeros(self.nhid), name="prior_mu")
        self.log_sigma = sharedX(np.zeros(self.nhid), name="prior_log_sigma")
        self._params = [self.mu, self.log_sigma]

    def sample_from_p_z(self, num_samples, **kwargs):
        if self.srng is None:
            raise RuntimeError("DiagonalGaussianPrior must belong to a VAE before sampling")
        noise = self.srng.normal(size=(num_samples, self.nhid))
        return self.mu + pt.exp(self.log_sigma) * noise

    def log_p_z(self, z):
        return log_diag_gaussian(z, self.mu, self.log_sigma)
