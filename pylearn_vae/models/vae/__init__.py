r"""The variational autoencoder.

:class:`VAE` combines a :class:`~pylearn_vae.models.vae.prior.Prior`
:math:`p_\theta(\mathbf{z})`, a conditional
:math:`p_\theta(\mathbf{x}\mid\mathbf{z})` and an approximate posterior
:math:`q_\phi(\mathbf{z}\mid\mathbf{x})` (both
:class:`~pylearn_vae.models.vae.conditional.Conditional`), and a
:class:`~pylearn_vae.models.vae.kl.KLIntegrator` for the closed-form KL
term when one fits. All methods return PyTensor symbolic expressions;
compile them with :func:`pylearn_vae.compile.function` so that the
random draws they contain advance at every call.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections import OrderedDict

import numpy as np
import pytensor.tensor as pt

from pylearn_vae.errors import ApproximateKLWarning
from pylearn_vae.expr.basic import log_sum_exp, mean
from pylearn_vae.models.model import Model
from pylearn_vae.models.vae.conditional import Conditional
from pylearn_vae.models.vae.kl import KLIntegrator, find_integrator_for
from pylearn_vae.models.vae.prior import Prior
from pylearn_vae.space import VectorSpace
from pylearn_vae.utils import check_positive_int, constantX, floatX, safe_update
from pylearn_vae.utils.rng import make_np_rng

__all__ = ["VAE", "ApproximateKLWarning", "check_num_samples"]


def _as_bool(value, what: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{what} must be true/false (or 1/0), got {value!r}")


def check_num_samples(num_samples):
    """Validate a Python ``num_samples``; symbolic values pass through."""
    if isinstance(num_samples, bool):
        raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}")
    if isinstance(num_samples, numbers.Integral):
        if num_samples < 1:
            raise ValueError(f"num_samples must be an integer >= 1, got {num_samples}")
        return int(num_samples)
    if isinstance(num_samples, numbers.Number):
        raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}")
    return num_samples


def _check_components(prior, conditional, posterior) -> None:
    for what, obj, cls in (
        ("prior", prior, Prior),
        ("conditional", conditional, Conditional),
        ("posterior", posterior, Conditional),
    ):
        if not isinstance(obj, cls):
            raise TypeError(
                f"VAE {what} must be a {cls.__module__}.{cls.__name__}, got {type(obj).__name__}"
            )
    if conditional is posterior:
        raise ValueError("VAE conditional and posterior must be two different objects")


def _choose_integrator(kl_integrator, prior, posterior):
    """The given integrator once checked, else the registered one that fits (none
    when either component says its KL term is estimated by Monte Carlo)."""
    if kl_integrator is None:
        if prior.kl_by_monte_carlo or posterior.kl_by_monte_carlo:
            return None
        return find_integrator_for(prior, posterior)
    if not isinstance(kl_integrator, KLIntegrator):
        raise TypeError(
            f"VAE kl_integrator must be a KLIntegrator, got {type(kl_integrator).__name__}"
        )
    if not kl_integrator.is_compatible(prior, posterior):
        raise ValueError(
            f"kl_integrator {type(kl_integrator).__name__} handles prior "
            f"{kl_integrator.prior_class.__name__} and posterior "
            f"{kl_integrator.posterior_class.__name__}, but this VAE has prior "
            f"{type(prior).__name__} and posterior {type(posterior).__name__}"
        )
    return kl_integrator


class VAE(Model):
    r"""Variational autoencoder (Kingma and Welling, 2014; Rezende et al., 2014).

    Parameters
    ----------
    nvis : int
        Dimension of the observed vector :math:`\mathbf{x}`.
    prior : Prior
        Prior :math:`p_\theta(\mathbf{z})`.
    conditional : Conditional
        Decoder :math:`p_\theta(\mathbf{x}\mid\mathbf{z})`.
    posterior : Conditional
        Encoder :math:`q_\phi(\mathbf{z}\mid\mathbf{x})`; must support the
        reparametrization trick.
    nhid : int
        Dimension of the latent vector :math:`\mathbf{z}`.
    learn_prior : bool
        Whether the prior's parameters are trained (``1``/``0`` accepted).
    kl_integrator : KLIntegrator, optional
        Analytic KL; found automatically when None. When nothing fits, the
        KL term is estimated by Monte Carlo (with a warning).
    batch_size : int, optional
        Stored for Pylearn2 compatibility.
    seed : int or sequence of int, optional
        Seeds both weight initialisation and the symbolic noise.
    """

    def __init__(
        self,
        nvis: int,
        prior: Prior,
        conditional: Conditional,
        posterior: Conditional,
        nhid: int,
        learn_prior=True,
        kl_integrator: KLIntegrator | None = None,
        batch_size: int | None = None,
        seed=None,
    ) -> None:
        super().__init__()
        self.nvis = check_positive_int(nvis, "VAE nvis")
        self.nhid = check_positive_int(nhid, "VAE nhid")
        self.learn_prior = _as_bool(learn_prior, "VAE learn_prior")
        self.batch_size = batch_size
        self.seed = seed
        _check_components(prior, conditional, posterior)
        self.prior = prior
        self.conditional = conditional
        self.posterior = posterior

        # The components draw their noise seeds from this generator in
        # set_vae (as in Pylearn2), before any weight is initialised.
        self.rng = make_np_rng(seed, default_seed=[2014, 10, 8])
        self.input_space = VectorSpace(dim=self.nvis)
        self.input_source = "features"
        self.latent_space = VectorSpace(dim=self.nhid)

        self._initialize_components()

        self.kl_integrator = _choose_integrator(kl_integrator, prior, posterior)
        self._warned_approximate_kl = False

        self._params = self.get_posterior_params() + self.get_conditional_params()
        if self.learn_prior:
            self._params += self.get_prior_params()
        self._check_unique_names()

    def _components(self) -> tuple:
        """Every component, in the order their noise seeds are drawn."""
        return (self.prior, self.conditional, self.posterior)

    def networks(self) -> tuple:
        """The conditionals (networks) of the model (the evaluation sizes its
        batches by their widest layer)."""
        return (self.posterior, self.conditional)

    def _initialize_components(self) -> None:
        for part in self._components():
            part.set_vae(self)
        self.prior.initialize_parameters(nhid=self.nhid)
        self.conditional.initialize_parameters(input_space=self.latent_space, ndim=self.nvis)
        self.posterior.initialize_parameters(input_space=self.input_space, ndim=self.nhid)

    def _check_unique_names(self) -> None:
        """Parameters and random generators are found by name (in model files
        and checkpoints), so names must not repeat."""
        all_params = (
            self.get_posterior_params() + self.get_conditional_params() + self.get_prior_params()
        )
        names = [p.name for p in all_params]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"VAE parameter names must be unique, but {', '.join(map(repr, duplicates))} "
                "occur more than once; give the conditional and the posterior different "
                "names, and their layers different layer_names"
            )
        # Each component names its generators after itself.
        noise_names = [part.srng.name for part in self._components()]
        if len(set(noise_names)) != len(noise_names):
            raise ValueError(
                f"{type(self).__name__} components must have different names, got "
                f"{', '.join(map(repr, noise_names))}"
            )

    # -- parameters ------------------------------------------------------
    def get_prior_params(self) -> list:
        """The prior's shared variables (trained only when ``learn_prior``)."""
        return self.prior.get_params()

    def get_conditional_params(self) -> list:
        """The decoder's shared variables (its MLP's weights and biases)."""
        return self.conditional.get_params()

    def get_posterior_params(self) -> list:
        """The encoder's shared variables (its MLP's weights and biases)."""
        return self.posterior.get_params()

    def get_lr_scalers(self) -> OrderedDict:
        rval = OrderedDict()
        for part in self._components():
            safe_update(rval, part.get_lr_scalers())
        return rval

    def _modify_updates(self, updates) -> None:
        for part in self._components():
            part.modify_updates(updates)

    def get_weights(self):
        """Weights of the encoder's first layer (input to hidden), as in Pylearn2.

        Like every model's ``get_weights``, the rows index the input
        (visible) units, so the weights can be viewed as images.
        """
        return self.posterior.get_weights()

    # -- building blocks -------------------------------------------------
    def _check_X(self, X):
        X = pt.as_tensor_variable(X)
        self.input_space.validate(X)
        if X.type.shape[1] == self.nvis:
            return X  # already known to have the right width
        return pt.specify_shape(X, (None, self.nvis))

    def encode_phi(self, X) -> tuple:
        r"""Parameters :math:`\phi` of :math:`q_\phi(\mathbf{z}\mid\mathbf{x})` for ``X``."""
        return self.posterior.encode_conditional_params(self._check_X(X))

    def decode_theta(self, z) -> tuple:
        r"""Parameters :math:`\theta` of :math:`p_\theta(\mathbf{x}\mid\mathbf{z})` for ``z``."""
        return self.conditional.encode_conditional_params(z)

    def means_from_theta(self, theta):
        r"""Expected :math:`\mathbf{x}` under :math:`p_\theta(\mathbf{x}\mid\mathbf{z})`."""
        return self.conditional.conditional_expectation(theta)

    def get_prior_theta(self) -> tuple:
        """Parameters of the prior, as a tuple."""
        return self.prior.get_theta()

    def sample_from_p_z(self, num_samples, **kwargs):
        """``num_samples`` latent vectors drawn from the prior, shape (num_samples, nhid)."""
        return self.prior.sample_from_p_z(check_num_samples(num_samples), **kwargs)

    def sample_from_p_x_given_z(self, num_samples, theta):
        r"""Observations drawn from :math:`p_\theta(\mathbf{x}\mid\mathbf{z})`, one per row
        of the decoder parameters ``theta`` (from :meth:`decode_theta`)."""
        return self.conditional.sample_from_conditional(theta, num_samples=num_samples)

    def sample_from_q_z_given_x(self, epsilon, phi):
        r"""Latent samples from :math:`q_\phi(\mathbf{z}\mid\mathbf{x})` by the
        reparametrization trick: a differentiable function of the encoder
        parameters ``phi`` and of the noise ``epsilon`` (from
        :meth:`sample_from_epsilon`; a leading samples axis is kept)."""
        return self.posterior.sample_from_conditional(phi, epsilon=epsilon)

    def sample_from_epsilon(self, shape):
        """The posterior's parameter-free noise of ``shape``, e.g. (num_samples,
        batch, nhid) standard normals for a Gaussian posterior."""
        return self.posterior.sample_from_epsilon(shape)

    def log_p_z(self, z):
        """Log-density of latent vectors ``z`` under the prior, summed over the
        latent axis (one value per vector; leading axes are kept)."""
        return self.prior.log_p_z(z)

    def log_p_x_given_z(self, X, theta):
        """Log-likelihood of observations ``X`` under the decoder parameters
        ``theta``, summed over the data axis (``X`` broadcasts against a leading
        samples axis of ``theta``)."""
        return self.conditional.log_conditional(X, theta)

    def log_q_z_given_x(self, z, phi):
        """Log-density of ``z`` under the posterior with encoder parameters
        ``phi``, summed over the latent axis."""
        return self.posterior.log_conditional(z, phi)

    def expectation_term(self, X, theta):
        r"""Reconstruction term :math:`\mathbb{E}_q[\log p_\theta(\mathbf{x}\mid\mathbf{z})]`.

        ``theta`` may carry a leading samples axis, over which the
        log-likelihood is averaged; the result has one value per example.
        """
        theta = tuple(theta)
        if theta[0].ndim == 3:
            return mean(self.log_p_x_given_z(X[None, :, :], theta), axis=0)
        return self.log_p_x_given_z(X, theta)

    def kl_divergence_term(self, phi, theta, approximate: bool = False, epsilon=None):
        r"""KL term :math:`KL(q_\phi(\mathbf{z}\mid\mathbf{x}) \| p_\theta(\mathbf{z}))` per example.

        Analytic when an integrator fits and ``approximate`` is false;
        otherwise a Monte Carlo estimate from the noise ``epsilon``
        (shape ``(num_samples, batch, nhid)``).
        """
        if self.kl_integrator is None:
            expected = self.prior.kl_by_monte_carlo or self.posterior.kl_by_monte_carlo
            if not (self._warned_approximate_kl or expected):
                warnings.warn(
                    f"no KLIntegrator fits prior {type(self.prior).__name__} and posterior "
                    f"{type(self.posterior).__name__}; the KL divergence term is estimated "
                    "by Monte Carlo instead of computed analytically",
                    ApproximateKLWarning,
                    stacklevel=2,
                )
                self._warned_approximate_kl = True
            return self._approximate_kl_divergence_term(phi, epsilon)
        if approximate:
            return self._approximate_kl_divergence_term(phi, epsilon)
        return self.kl_integrator.kl_divergence(
            phi=phi, theta=theta, prior=self.prior, posterior=self.posterior
        )

    def per_component_kl_divergence_term(self, phi, theta):
        """KL term per example and latent dimension (needs an analytic integrator)."""
        if self.kl_integrator is None:
            raise NotImplementedError(
                f"no KLIntegrator fits prior {type(self.prior).__name__} and posterior "
                f"{type(self.posterior).__name__}, so the KL term cannot be split per component"
            )
        return self.kl_integrator.per_component_kl_divergence(
            phi=phi, theta=theta, prior=self.prior, posterior=self.posterior
        )

    def _approximate_kl_divergence_term(self, phi, epsilon):
        if epsilon is None:
            raise ValueError("a Monte Carlo KL estimate needs epsilon noise samples")
        z = self.sample_from_q_z_given_x(epsilon=epsilon, phi=phi)
        return mean(self.log_q_z_given_x(z, phi) - self.log_p_z(z), axis=0)

    def _decode_samples(self, z, num_samples):
        """Decode ``z`` of shape (S, batch, nhid) into theta of shape (S, batch, .).

        The samples axis is folded into the batch for the MLP. Reshapes use
        ``-1`` and static sizes where known, so that backends that need
        concrete shapes (JAX) can compile the graph.
        """
        flat = z.reshape((-1, self.nhid))
        theta = self.decode_theta(flat)
        lead = num_samples if isinstance(num_samples, int) else z.shape[0]

        def unfold(t):
            last = t.type.shape[-1] if t.type.shape[-1] is not None else t.shape[-1]
            return t.reshape((lead, -1, last))

        return tuple(unfold(t) for t in theta)

    # -- high-level ------------------------------------------------------
    def sample(self, num_samples, return_sample_means: bool = True, **kwargs):
        """Draw ``num_samples`` samples from the model (and their means)."""
        num_samples = check_num_samples(num_samples)
        z = self.sample_from_p_z(num_samples, **kwargs)
        theta = self.decode_theta(z)
        X = self.sample_from_p_x_given_z(num_samples, theta)
        if return_sample_means:
            return X, self.means_from_theta(theta)
        return X

    def reconstruct(self, X, noisy_encoding: bool = False, return_sample_means: bool = True):
        """Encode ``X``, decode it back and sample the reconstruction.

        Without ``noisy_encoding`` the posterior's mean is decoded.
        """
        phi = self.encode_phi(X)
        if noisy_encoding:
            epsilon = self.sample_from_epsilon((X.shape[0], self.nhid))
            z = self.sample_from_q_z_given_x(epsilon=epsilon, phi=phi)
        else:
            z = self.posterior.conditional_expectation(phi)
        theta = self.decode_theta(z)
        reconstructed = self.sample_from_p_x_given_z(X.shape[0], theta)
        if return_sample_means:
            return reconstructed, self.means_from_theta(theta)
        return reconstructed

    def log_likelihood_lower_bound(
        self, X, num_samples, approximate_kl: bool = False, return_individual_terms: bool = False
    ):
        r"""The VAE criterion (ELBO) per example.

        .. math::
            \mathcal{L}(\mathbf{x}) = \frac1S\sum_{s=1}^S
            \log p_\theta(\mathbf{x}\mid\mathbf{z}^{(s)})
            - KL(q_\phi(\mathbf{z}\mid\mathbf{x}) \| p_\theta(\mathbf{z})),
            \quad \mathbf{z}^{(s)} = g_\phi(\mathbf{x}, \epsilon^{(s)})

        With ``return_individual_terms`` the pair ``(kl, expectation)`` is
        returned instead of their difference.
        """
        num_samples = check_num_samples(num_samples)
        X = self._check_X(X)
        epsilon = self.sample_from_epsilon((num_samples, X.shape[0], self.nhid))
        phi = self.encode_phi(X)
        z = self.sample_from_q_z_given_x(epsilon=epsilon, phi=phi)
        theta = self._decode_samples(z, num_samples)
        expectation_term = self.expectation_term(X, theta)
        kl_divergence_term = self.kl_divergence_term(
            phi=phi, theta=self.get_prior_theta(), approximate=approximate_kl, epsilon=epsilon
        )
        if return_individual_terms:
            return kl_divergence_term, expectation_term
        return expectation_term - kl_divergence_term

    def log_likelihood_approximation(self, X, num_samples):
        r"""Importance-sampling estimate of :math:`\log p(\mathbf{x})` per example.

        .. math::
            \log p(\mathbf{x}) \approx \log \frac1K \sum_{k=1}^K
            \frac{p_\theta(\mathbf{x}\mid\mathbf{z}^{(k)})\,p_\theta(\mathbf{z}^{(k)})}
                 {q_\phi(\mathbf{z}^{(k)}\mid\mathbf{x})}

        computed with a stable log-sum-exp over the ``num_samples`` draws.
        """
        num_samples = check_num_samples(num_samples)
        log_weights = self.log_importance_weights(X, num_samples)
        if isinstance(num_samples, int):
            log_k = constantX(math.log(num_samples))
        else:
            log_k = pt.log(pt.cast(num_samples, floatX()))
        return log_sum_exp(log_weights, axis=0) - log_k

    def log_importance_weights(self, X, num_samples):
        r"""The log importance weights, shape (``num_samples``, examples) (an addition).

        :math:`\log w_k = \log p_\theta(\mathbf{x}\mid\mathbf{z}^{(k)})
        + \log p_\theta(\mathbf{z}^{(k)}) - \log q_\phi(\mathbf{z}^{(k)}\mid\mathbf{x})`
        with :math:`\mathbf{z}^{(k)} \sim q_\phi(\mathbf{z}\mid\mathbf{x})`:
        their log-mean-exp is :meth:`log_likelihood_approximation`, and their
        mean estimates the ELBO (with a Monte Carlo KL term).
        """
        num_samples = check_num_samples(num_samples)
        X = self._check_X(X)
        epsilon = self.sample_from_epsilon((num_samples, X.shape[0], self.nhid))
        phi = self.encode_phi(X)
        z = self.sample_from_q_z_given_x(epsilon=epsilon, phi=phi)
        theta = self._decode_samples(z, num_samples)
        return (
            self.log_p_z(z)
            + self.log_p_x_given_z(X[None, :, :], theta)
            - self.log_q_z_given_x(z, phi)
        )

    # -- monitoring ------------------------------------------------------
    def get_monitoring_data_specs(self):
        return (self.input_space, self.input_source)

    def get_monitoring_channels(self, data) -> OrderedDict:
        r"""Channels for a batch ``data``.

        ``reconstruction_mse``, then the posterior's channels (from
        :math:`\phi`), the conditional's channels (from :math:`\theta`
        decoded from one posterior sample per example) and the prior's,
        each named by the component (e.g. ``posterior_sigma_mean``).
        """
        X = self._check_X(data)
        rval = OrderedDict()
        # One posterior sample per example, drawn and decoded exactly as the
        # lower bound does for num_samples=1, so that under the monitor's
        # shared noise the two expressions share their work.
        epsilon = self.sample_from_epsilon((1, X.shape[0], self.nhid))
        phi = self.encode_phi(X)
        z = self.sample_from_q_z_given_x(epsilon=epsilon, phi=phi)
        theta = tuple(t[0] for t in self._decode_samples(z, 1))
        X_r = self.means_from_theta(theta)
        rval["reconstruction_mse"] = mean(pt.sqr(X - X_r))
        safe_update(rval, self.posterior.monitoring_channels_from_conditional_params(phi))
        safe_update(rval, self.conditional.monitoring_channels_from_conditional_params(theta))
        safe_update(rval, self.prior.monitoring_channels_from_prior_params())
        return rval
