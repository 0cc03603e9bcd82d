r"""A VAE with two stochastic layers (an addition: Pylearn2 had one).

The generative model is top-down,

.. math::
    p(\mathbf{x}, \mathbf{z}_1, \mathbf{z}_2) =
    p_\theta(\mathbf{x} \mid \mathbf{z}_1, \mathbf{z}_2)\,
    p_\theta(\mathbf{z}_1 \mid \mathbf{z}_2)\, p_\lambda(\mathbf{z}_2),

and the inference network is the coupled form of Tomczak and Welling's
two-level VampPrior model,

.. math::
    q(\mathbf{z}_1, \mathbf{z}_2 \mid \mathbf{x}) =
    q_\phi(\mathbf{z}_2 \mid \mathbf{x})\, q_\phi(\mathbf{z}_1 \mid \mathbf{x}, \mathbf{z}_2).

Every part is a component of the one-layer framework: the top prior is any
:class:`~pylearn_vae.models.vae.prior.Prior` (a VampPrior mixes the top
posterior :math:`q(\mathbf{z}_2\mid\mathbf{x})` at its pseudo-inputs), and
the two networks of the bottom layer are
:class:`~pylearn_vae.models.vae.conditional.Conditional` objects whose
input is the concatenation of their conditioning variables. The bottom
prior :math:`p(\mathbf{z}_1\mid\mathbf{z}_2)` is seen by the KL registry as
a :class:`LatentConditionalPrior`, so both KL terms are analytic where a
registered integrator fits and Monte Carlo estimates where none does.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

import pytensor.tensor as pt

from pylearn_vae.errors import ApproximateKLWarning
from pylearn_vae.expr.basic import mean
from pylearn_vae.expr.probability import kl_diag_gaussians
from pylearn_vae.models.vae import VAE, check_num_samples
from pylearn_vae.models.vae.conditional import Conditional, DiagonalGaussian
from pylearn_vae.models.vae.kl import KLIntegrator, find_integrator_for
from pylearn_vae.models.vae.prior import Prior
from pylearn_vae.space import VectorSpace
from pylearn_vae.utils import check_positive_int, safe_update

__all__ = ["HierarchicalVAE", "LatentConditionalPrior", "LatentConditionalGaussianKL"]


class LatentConditionalPrior(Prior):
    r"""A prior whose parameters are computed from another latent vector:
    :math:`p_\theta(\mathbf{z}_1\mid\mathbf{z}_2)`, the bottom prior of a
    :class:`HierarchicalVAE`, wrapping the
    :class:`~pylearn_vae.models.vae.conditional.Conditional` that computes
    it. Its ``theta`` are the conditional's parameters for the given
    :math:`\mathbf{z}_2`; it has no parameters of its own.
    """

    def __init__(self, conditional: Conditional) -> None:
        super().__init__()
        self.conditional = conditional
        self.kl_by_monte_carlo = bool(getattr(conditional, "kl_by_monte_carlo", False))

    def log_p_z(self, z, theta):
        """Log-density of ``z`` given the parameters ``theta`` (computed from z2)."""
        return self.conditional.log_conditional(z, theta)


class LatentConditionalGaussianKL(KLIntegrator):
    r"""KL between a diagonal Gaussian posterior and a diagonal Gaussian prior whose
    parameters come from another latent vector (the bottom layer of a
    :class:`HierarchicalVAE`): closed form given :math:`\mathbf{z}_2`."""

    prior_class = LatentConditionalPrior
    posterior_class = DiagonalGaussian

    def is_compatible(self, prior, posterior) -> bool:
        return (
            super().is_compatible(prior, posterior)
            and isinstance(prior.conditional, DiagonalGaussian)
            and not prior.kl_by_monte_carlo
            and not posterior.kl_by_monte_carlo
        )

    def per_component_kl_divergence(self, phi, theta, prior, posterior):
        self._validate_prior_posterior(prior, posterior)
        return kl_diag_gaussians(*phi, *theta, per_component=True)


def _concatenate(*parts):
    """Concatenate along the last axis, broadcasting leading axes (an (B, d) part
    against (S, B, e) parts)."""
    ndim = max(p.ndim for p in parts)
    if all(p.ndim == ndim for p in parts):
        return pt.concatenate(list(parts), axis=-1)
    lead = next(p for p in parts if p.ndim == ndim).shape[:-1]
    full = [
        p
        if p.ndim == ndim
        else pt.broadcast_to(pt.shape_padleft(p, ndim - p.ndim), (*lead, p.shape[-1]))
        for p in parts
    ]
    return pt.concatenate(full, axis=-1)


class HierarchicalVAE(VAE):
    r"""VAE with latent layers :math:`\mathbf{z}_2 \to \mathbf{z}_1 \to \mathbf{x}`.

    The same API as :class:`~pylearn_vae.models.vae.VAE` (parameters,
    ``log_likelihood_lower_bound``, ``log_likelihood_approximation``,
    ``log_importance_weights``, ``sample``, ``reconstruct``, monitoring),
    so that the costs, the evaluation and the programs use it unchanged.

    Parameters
    ----------
    nvis : int
        Dimension of :math:`\mathbf{x}`.
    prior : Prior
        :math:`p(\mathbf{z}_2)`, on the top layer.
    conditional : Conditional
        :math:`p(\mathbf{x}\mid\mathbf{z}_1, \mathbf{z}_2)`; its MLP's input is
        :math:`[\mathbf{z}_1, \mathbf{z}_2]`.
    posterior : Conditional
        :math:`q(\mathbf{z}_2\mid\mathbf{x})` (reparametrizable).
    bottom_prior : Conditional
        :math:`p(\mathbf{z}_1\mid\mathbf{z}_2)`, e.g. a ``DiagonalGaussian``.
    bottom_posterior : Conditional
        :math:`q(\mathbf{z}_1\mid\mathbf{x}, \mathbf{z}_2)`; its MLP's input is
        :math:`[\mathbf{x}, \mathbf{z}_2]` (reparametrizable).
    nhid : int
        Dimension of the top latent :math:`\mathbf{z}_2`.
    bottom_nhid : int
        Dimension of :math:`\mathbf{z}_1`.
    learn_prior, kl_integrator, batch_size, seed
        As for :class:`~pylearn_vae.models.vae.VAE` (``kl_integrator`` is the
        top layer's; the bottom layer's is found in the registry).
    """

    def __init__(
        self,
        nvis: int,
        prior: Prior,
        conditional: Conditional,
        posterior: Conditional,
        bottom_prior: Conditional,
        bottom_posterior: Conditional,
        nhid: int,
        bottom_nhid: int,
        learn_prior=True,
        kl_integrator: KLIntegrator | None = None,
        batch_size: int | None = None,
        seed=None,
    ) -> None:
        for what, obj in (("bottom_prior", bottom_prior), ("bottom_posterior", bottom_posterior)):
            if not isinstance(obj, Conditional):
                raise TypeError(
                    f"HierarchicalVAE {what} must be a pylearn_vae.models.vae.conditional."
                    f"Conditional, got {type(obj).__name__}"
                )
        parts = [conditional, posterior, bottom_prior, bottom_posterior]
        if len({id(p) for p in parts}) != len(parts):
            raise ValueError("HierarchicalVAE's four networks must be four different objects")
        self.bottom_nhid = check_positive_int(bottom_nhid, "HierarchicalVAE bottom_nhid")
        self.bottom_prior = bottom_prior
        self.bottom_posterior = bottom_posterior
        super().__init__(
            nvis=nvis,
            prior=prior,
            conditional=conditional,
            posterior=posterior,
            nhid=nhid,
            learn_prior=learn_prior,
            kl_integrator=kl_integrator,
            batch_size=batch_size,
            seed=seed,
        )
        self.bottom_latent_space = VectorSpace(dim=self.bottom_nhid)
        self.bottom_kl_prior = LatentConditionalPrior(bottom_prior)
        self.bottom_kl_integrator = self._bottom_integrator()

    # -- wiring (called by VAE.__init__) ------------------------------------
    def _initialize_components(self) -> None:
        n1, n2 = self.bottom_nhid, self.nhid
        for part in self._components():
            part.set_vae(self)
        self.prior.initialize_parameters(nhid=n2)
        self.posterior.initialize_parameters(input_space=self.input_space, ndim=n2)
        self.bottom_posterior.initialize_parameters(
            input_space=VectorSpace(dim=self.nvis + n2), ndim=n1
        )
        self.bottom_prior.initialize_parameters(input_space=VectorSpace(dim=n2), ndim=n1)
        self.conditional.initialize_parameters(input_space=VectorSpace(dim=n1 + n2), ndim=self.nvis)

    def _components(self) -> tuple:
        return (
            self.prior,
            self.conditional,
            self.posterior,
            self.bottom_prior,
            self.bottom_posterior,
        )

    def _bottom_integrator(self):
        found = find_integrator_for(self.bottom_kl_prior, self.bottom_posterior)
        if found is not None and not found.is_compatible(
            self.bottom_kl_prior, self.bottom_posterior
        ):
            return None
        return found

    def networks(self) -> tuple:
        """The four conditionals (the evaluation sizes its batches by their widest layer)."""
        return (self.posterior, self.bottom_posterior, self.bottom_prior, self.conditional)

    # -- parameters -------------------------------------------------------
    def get_conditional_params(self) -> list:
        """The generative networks' shared variables: p(x|z1,z2) and p(z1|z2)."""
        return self.conditional.get_params() + self.bottom_prior.get_params()

    def get_posterior_params(self) -> list:
        """The inference networks' shared variables: q(z2|x) and q(z1|x,z2)."""
        return self.posterior.get_params() + self.bottom_posterior.get_params()

    # -- building blocks ----------------------------------------------------
    @staticmethod
    def _through(network: Conditional, inputs, num_samples) -> tuple:
        """``network``'s parameters for ``inputs`` of shape (S, B, d): the samples
        axis is folded into the batch for the MLP and unfolded after (static sizes
        where known, for backends that need them)."""
        width = inputs.type.shape[-1] if inputs.type.shape[-1] is not None else inputs.shape[-1]
        params = network.encode_conditional_params(inputs.reshape((-1, width)))
        lead = num_samples if isinstance(num_samples, int) else inputs.shape[0]

        def unfold(t):
            last = t.type.shape[-1] if t.type.shape[-1] is not None else t.shape[-1]
            return t.reshape((lead, -1, last))

        return tuple(unfold(t) for t in params)

    def _bottom_posterior_phi(self, X, z2, num_samples) -> tuple:
        return self._through(self.bottom_posterior, _concatenate(X, z2), num_samples)

    def _bottom_prior_theta(self, z2, num_samples) -> tuple:
        return self._through(self.bottom_prior, z2, num_samples)

    def _decode(self, z1, z2, num_samples) -> tuple:
        return self._through(self.conditional, _concatenate(z1, z2), num_samples)

    def _infer(self, X, num_samples):
        """Draw (z2, z1) from the inference network: ``phi2, z2, eps2, phi1, z1, eps1``."""
        batch = X.shape[0]
        phi2 = self.encode_phi(X)
        eps2 = self.posterior.sample_from_epsilon((num_samples, batch, self.nhid))
        z2 = self.posterior.sample_from_conditional(phi2, epsilon=eps2)
        phi1 = self._bottom_posterior_phi(X, z2, num_samples)
        eps1 = self.bottom_posterior.sample_from_epsilon((num_samples, batch, self.bottom_nhid))
        z1 = self.bottom_posterior.sample_from_conditional(phi1, epsilon=eps1)
        return phi2, z2, eps2, phi1, z1, eps1

    # -- the bound and the importance weights --------------------------------
    def _bottom_kl(self, phi1, z1, theta1, approximate: bool):
        """KL(q(z1|x,z2) || p(z1|z2)) per example, averaged over the samples of z2."""
        if self.bottom_kl_integrator is None or approximate:
            per_sample = self.bottom_posterior.log_conditional(
                z1, phi1
            ) - self.bottom_prior.log_conditional(z1, theta1)
        else:
            per_sample = self.bottom_kl_integrator.kl_divergence(
                phi=phi1, theta=theta1, prior=self.bottom_kl_prior, posterior=self.bottom_posterior
            )
        return mean(per_sample, axis=0)

    def _top_kl(self, phi2, z2, approximate: bool):
        if self.kl_integrator is None or approximate:
            if self.kl_integrator is None and not self._warned_approximate_kl:
                expected = self.prior.kl_by_monte_carlo or self.posterior.kl_by_monte_carlo
                if not expected:
                    warnings.warn(
                        f"no KLIntegrator fits prior {type(self.prior).__name__} and posterior "
                        f"{type(self.posterior).__name__}; the top KL term is estimated by "
                        "Monte Carlo",
                        ApproximateKLWarning,
                        stacklevel=3,
                    )
                self._warned_approximate_kl = True
            return mean(self.log_q_z_given_x(z2, phi2) - self.log_p_z(z2), axis=0)
        return self.kl_integrator.kl_divergence(
            phi=phi2, theta=self.get_prior_theta(), prior=self.prior, posterior=self.posterior
        )

    def log_likelihood_lower_bound(
        self, X, num_samples, approximate_kl: bool = False, return_individual_terms: bool = False
    ):
        r"""The ELBO per example:

        .. math::
            \mathbb{E}_q[\log p(\mathbf{x}\mid\mathbf{z}_1,\mathbf{z}_2)]
            - KL(q(\mathbf{z}_2\mid\mathbf{x}) \| p(\mathbf{z}_2))
            - \mathbb{E}_{q(\mathbf{z}_2\mid\mathbf{x})}
              KL(q(\mathbf{z}_1\mid\mathbf{x},\mathbf{z}_2) \| p(\mathbf{z}_1\mid\mathbf{z}_2))

        each KL term analytic when an integrator fits (and ``approximate_kl``
        is false), else estimated from the same samples. With
        ``return_individual_terms`` the pair ``(kl, expectation)`` (both KL
        terms summed) is returned instead of their difference.
        """
        num_samples = check_num_samples(num_samples)
        X = self._check_X(X)
        phi2, z2, _, phi1, z1, _ = self._infer(X, num_samples)
        theta = self._decode(z1, z2, num_samples)
        expectation = mean(self.log_p_x_given_z(X[None, :, :], theta), axis=0)
        kl = self._top_kl(phi2, z2, approximate_kl) + self._bottom_kl(
            phi1, z1, self._bottom_prior_theta(z2, num_samples), approximate_kl
        )
        if return_individual_terms:
            return kl, expectation
        return expectation - kl

    def log_importance_weights(self, X, num_samples):
        r""":math:`\log w_k = \log p(\mathbf{x}\mid\mathbf{z}_1,\mathbf{z}_2)
        + \log p(\mathbf{z}_1\mid\mathbf{z}_2) + \log p(\mathbf{z}_2)
        - \log q(\mathbf{z}_1\mid\mathbf{x},\mathbf{z}_2) - \log q(\mathbf{z}_2\mid\mathbf{x})`,
        shape (``num_samples``, examples)."""
        num_samples = check_num_samples(num_samples)
        X = self._check_X(X)
        phi2, z2, _, phi1, z1, _ = self._infer(X, num_samples)
        theta = self._decode(z1, z2, num_samples)
        theta1 = self._bottom_prior_theta(z2, num_samples)
        return (
            self.log_p_x_given_z(X[None, :, :], theta)
            + self.bottom_prior.log_conditional(z1, theta1)
            + self.log_p_z(z2)
            - self.bottom_posterior.log_conditional(z1, phi1)
            - self.log_q_z_given_x(z2, phi2)
        )

    def kl_divergence_term(self, phi, theta, approximate: bool = False, epsilon=None):
        raise NotImplementedError(
            "a HierarchicalVAE's KL term needs samples of z2: use log_likelihood_lower_bound "
            "with return_individual_terms=True"
        )

    def per_component_kl_divergence_term(self, phi, theta):
        raise NotImplementedError("a HierarchicalVAE's KL term does not split per component")

    # -- sampling -----------------------------------------------------------
    def sample(self, num_samples, return_sample_means: bool = True, **kwargs):
        """Draw ``num_samples`` observations: z2 from the prior, z1 from p(z1|z2), x from p(x|z1,z2)."""
        num_samples = check_num_samples(num_samples)
        z2 = self.sample_from_p_z(num_samples, **kwargs)
        theta1 = self.bottom_prior.encode_conditional_params(z2)
        z1 = self.bottom_prior.sample_from_conditional(theta1, num_samples=num_samples)
        theta = self.conditional.encode_conditional_params(_concatenate(z1, z2))
        X = self.sample_from_p_x_given_z(num_samples, theta)
        if return_sample_means:
            return X, self.means_from_theta(theta)
        return X

    def reconstruct(self, X, noisy_encoding: bool = False, return_sample_means: bool = True):
        """Encode ``X`` (the posteriors' means, or samples with ``noisy_encoding``),
        decode and sample the reconstruction."""
        X = self._check_X(X)
        if noisy_encoding:
            _, z2, _, _, z1, _ = self._infer(X, 1)
            z1, z2 = z1[0], z2[0]
        else:
            z2 = self.posterior.conditional_expectation(self.encode_phi(X))
            phi1 = self.bottom_posterior.encode_conditional_params(_concatenate(X, z2))
            z1 = self.bottom_posterior.conditional_expectation(phi1)
        theta = self.conditional.encode_conditional_params(_concatenate(z1, z2))
        reconstructed = self.sample_from_p_x_given_z(X.shape[0], theta)
        if return_sample_means:
            return reconstructed, self.means_from_theta(theta)
        return reconstructed

    # -- monitoring ---------------------------------------------------------
    def get_monitoring_channels(self, data) -> OrderedDict:
        """``reconstruction_mse`` and the channels of every component (named by
        the component: ``posterior_sigma_mean``, ``bottom_posterior_sigma_mean``...)."""
        X = self._check_X(data)
        phi2, z2, _, phi1, z1, _ = self._infer(X, 1)
        theta = tuple(t[0] for t in self._decode(z1, z2, 1))
        theta1 = tuple(t[0] for t in self._bottom_prior_theta(z2, 1))
        rval = OrderedDict()
        rval["reconstruction_mse"] = mean(pt.sqr(X - self.means_from_theta(theta)))
        posterior_1 = tuple(t[0] for t in phi1)
        for network, params in (
            (self.posterior, phi2),
            (self.bottom_posterior, posterior_1),
            (self.bottom_prior, theta1),
            (self.conditional, theta),
        ):
            safe_update(rval, network.monitoring_channels_from_conditional_params(params))
        safe_update(rval, self.prior.monitoring_channels_from_prior_params())
        return rval
