r"""Analytic KL divergences between a prior and an approximate posterior.

A :class:`KLIntegrator` subclass names one ``prior_class`` and one
``posterior_class`` and computes :math:`KL(q_\phi(\mathbf{z}\mid\mathbf{x})
\,\|\, p_\theta(\mathbf{z}))` in closed form for those two classes (and their
subclasses). Subclasses register themselves in a registry keyed by that
pair when they are defined, so an integrator written in user code is found
by :func:`find_integrator_for` like the built-in ones.
"""

from __future__ import annotations

from pylearn_vae.expr.probability import kl_diag_gaussians
from pylearn_vae.models.vae.conditional import Conditional, DiagonalGaussian
from pylearn_vae.models.vae.prior import DiagonalGaussianPrior, Prior

__all__ = [
    "KLIntegrator",
    "DiagonalGaussianPriorPosteriorKL",
    "find_integrator_for",
    "register_integrator",
    "registered_integrators",
]

_REGISTRY: dict[tuple[type, type], type] = {}


def register_integrator(cls: type) -> type:
    """Register a :class:`KLIntegrator` subclass under its (prior, posterior) pair.

    Called automatically when a subclass with both ``prior_class`` and
    ``posterior_class`` is defined; call it yourself for classes created
    with ``register=False``. A later registration for the same pair
    replaces the earlier one.
    """
    if not (isinstance(cls, type) and issubclass(cls, KLIntegrator)):
        raise TypeError(f"{cls!r} is not a KLIntegrator subclass")
    prior_cls, posterior_cls = cls.prior_class, cls.posterior_class
    if not (isinstance(prior_cls, type) and issubclass(prior_cls, Prior)):
        raise TypeError(f"{cls.__name__}.prior_class must be a Prior subclass, got {prior_cls!r}")
    if not (isinstance(posterior_cls, type) and issubclass(posterior_cls, Conditional)):
        raise TypeError(
            f"{cls.__name__}.posterior_class must be a Conditional subclass, got {posterior_cls!r}"
        )
    _REGISTRY[(prior_cls, posterior_cls)] = cls
    return cls


def registered_integrators() -> dict[tuple[type, type], type]:
    """Return a copy of the registry ``{(prior_class, posterior_class): integrator}``."""
    return dict(_REGISTRY)


class KLIntegrator:
    """Closed-form KL term for one (prior class, posterior class) pair."""

    prior_class: type | None = None
    posterior_class: type | None = None

    def __init_subclass__(cls, register: bool = True, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if register and cls.prior_class is not None and cls.posterior_class is not None:
            register_integrator(cls)

    def _validate_prior_posterior(self, prior, posterior) -> None:
        if self.prior_class is None or self.posterior_class is None:
            raise NotImplementedError(
                f"{type(self).__name__} does not define prior_class and posterior_class"
            )
        if not isinstance(prior, self.prior_class):
            raise ValueError(
                f"{type(self).__name__} expects a prior of class {self.prior_class.__name__}, "
                f"got {type(prior).__name__}"
            )
        if not isinstance(posterior, self.posterior_class):
            raise ValueError(
                f"{type(self).__name__} expects a posterior of class "
                f"{self.posterior_class.__name__}, got {type(posterior).__name__}"
            )

    def is_compatible(self, prior, posterior) -> bool:
        return isinstance(prior, self.prior_class) and isinstance(posterior, self.posterior_class)

    def kl_divergence(self, phi, theta, prior, posterior):
        """KL divergence per example, summed over latent dimensions.

        ``phi`` are the posterior's parameters, ``theta`` the prior's.
        """
        return self.per_component_kl_divergence(phi, theta, prior, posterior).sum(axis=-1)

    def per_component_kl_divergence(self, phi, theta, prior, posterior):
        """KL divergence per example and latent dimension, when it decomposes."""
        raise NotImplementedError(
            f"{type(self).__name__} does not decompose the KL divergence per component"
        )


class DiagonalGaussianPriorPosteriorKL(KLIntegrator):
    """KL between a diagonal Gaussian posterior and a diagonal Gaussian prior."""

    prior_class = DiagonalGaussianPrior
    posterior_class = DiagonalGaussian

    def per_component_kl_divergence(self, phi, theta, prior, posterior):
        self._validate_prior_posterior(prior, posterior)
        post_mu, post_log_sigma = phi
        prior_mu, prior_log_sigma = theta
        return kl_diag_gaussians(
            post_mu, post_log_sigma, prior_mu, prior_log_sigma, per_component=True
        )


def _mro_distance(obj, cls: type) -> int:
    return type(obj).__mro__.index(cls)


def find_integrator_for(prior, posterior):
    """Return an instance of the integrator that fits ``prior`` and ``posterior``.

    Among registered integrators whose classes match by ``isinstance``, the
    most specific one wins (fewest inheritance steps, prior first, then
    posterior). Returns None when nothing fits.
    """
    candidates = []
    for (prior_cls, posterior_cls), integrator in _REGISTRY.items():
        if isinstance(prior, prior_cls) and isinstance(posterior, posterior_cls):
            key = (_mro_distance(prior, prior_cls), _mro_distance(posterior, posterior_cls))
            candidates.append((key, integrator))
    if not candidates:
        return None
    candidates.sort(key=lambda item: item[0])
    return candidates[0][1]()
