r"""Log densities and KL divergences as pure functions of symbolic tensors.

All functions sum over the last axis (the data or latent dimension) and
broadcast over any leading axes, so a leading "samples" axis works.
"""

from __future__ import annotations

import math

import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

from pylearn_vae.utils import constantX

__all__ = [
    "log_bernoulli",
    "log_diag_gaussian",
    "log_mixture_of_diag_gaussians",
    "logsumexp",
    "log_softmax",
    "kl_diag_gaussians",
    "softplus",
]

_LOG_2PI = math.log(2.0 * math.pi)


def log_bernoulli(x, logits):
    r"""Log-likelihood of binary ``x`` under Bernoulli units with ``logits``.

    .. math::
        \log p(x) = \sum_i x_i \log \sigma(s_i) + (1 - x_i)\log(1 - \sigma(s_i))
                  = -\sum_i x_i\,\mathrm{softplus}(-s_i) + (1 - x_i)\,\mathrm{softplus}(s_i)

                  = \sum_i x_i s_i - \mathrm{softplus}(s_i)

    The last form needs one transcendental pair per unit (it is about three
    times faster than two softplus terms on a CPU) and, with
    :func:`softplus`, stays finite for any ``s``.

    >>> import numpy as np
    >>> x, s = np.ones(1, "float32"), np.zeros(1, "float32")
    >>> round(float(log_bernoulli(x, s).eval()), 6)
    -0.693147
    """
    return (x * logits - softplus(logits)).sum(axis=-1)


def softplus(s):
    r"""Stable :math:`\log(1 + e^s)`, PyTensor's ``softplus`` operation.

    Every backend evaluates it without overflow (for large :math:`|s|` it is
    :math:`s` or :math:`e^s`), and its gradient is the sigmoid, so the
    Bernoulli gradient is the classic :math:`x - \sigma(s)`. (Written out as
    :math:`\max(s, 0) + \log(1 + e^{-|s|})` it is as stable, but its
    derived gradient costs about three times as much.)

    >>> import numpy as np
    >>> [round(float(v), 6) for v in softplus(np.array([-1000.0, 0.0, 1000.0], "float32")).eval()]
    [0.0, 0.693147, 1000.0]
    """
    return pt.softplus(s)


def log_diag_gaussian(x, mu, log_sigma):
    r"""Log-density of ``x`` under a Gaussian with diagonal covariance.

    .. math::
        \log p(x) = -\frac12 \sum_i \left[\log 2\pi + 2\log\sigma_i
                    + \frac{(x_i - \mu_i)^2}{\sigma_i^2}\right]

    >>> import numpy as np
    >>> z = np.zeros(1, "float32")
    >>> round(float(log_diag_gaussian(z, z, z).eval()), 6)
    -0.918939
    """
    # Scale before squaring: with a tiny sigma, x - mu can be exactly 0 while
    # exp(-2 log sigma) overflows, and 0 * inf would be NaN.
    return -0.5 * (
        constantX(_LOG_2PI) + 2.0 * log_sigma + pt.sqr((x - mu) * pt.exp(-log_sigma))
    ).sum(axis=-1)


def log_mixture_of_diag_gaussians(x, means, log_sigmas, log_weights):
    r"""Log-density of ``x`` under a mixture of K diagonal Gaussians.

    .. math::
        \log p(x) = \log \sum_k \exp\left(\log w_k
                    + \log \mathcal{N}(x \mid \mu_k, \mathrm{diag}\,\sigma_k^2)\right)

    ``means`` and ``log_sigmas`` have shape (K, d), ``log_weights`` (K,)
    (normalised: their exponentials sum to 1); ``x`` has shape (..., d) and
    the result (...). The sum over components is a stable log-sum-exp.

    >>> import numpy as np
    >>> z = np.zeros((1, 1), "float32")
    >>> w = np.log(np.full(2, 0.5, "float32"))
    >>> round(float(log_mixture_of_diag_gaussians(z[0], np.zeros((2, 1), "float32"), z.repeat(2, 0), w).eval()), 6)
    -0.918939
    """
    per_component = log_diag_gaussian(x[..., None, :], means, log_sigmas)
    return logsumexp(per_component + log_weights, axis=-1)


def logsumexp(x, axis=-1):
    r"""Stable :math:`\log \sum_i e^{x_i}` along ``axis`` (dropped).

    Written out (shifted by the maximum) rather than with
    ``pytensor.tensor.logsumexp``: PyTensor 3.3 builds that one as an inner
    graph whose gradient creates float64 constants in float32 graphs.

    >>> import numpy as np
    >>> round(float(logsumexp(np.array([1000.0, 1000.0], "float32")).eval()), 3)
    1000.693
    """
    # The shift cancels out, so no gradient flows through it (which also
    # keeps the max's and the switch's gradients out of the graph).
    top = disconnected_grad(pt.max(x, axis=axis, keepdims=True))
    top = pt.switch(pt.isinf(top), pt.zeros_like(top), top)  # all -inf (or +inf): no shift
    return pt.log(pt.sum(pt.exp(x - top), axis=axis)) + pt.squeeze(top, axis=axis)


def log_softmax(logits, axis=-1):
    """``logits`` minus their :func:`logsumexp`: normalised log-probabilities."""
    return logits - pt.expand_dims(logsumexp(logits, axis=axis), axis)


def kl_diag_gaussians(mu_q, log_sigma_q, mu_p, log_sigma_p, per_component: bool = False):
    r"""KL divergence :math:`KL(q \,\|\, p)` between diagonal Gaussians.

    .. math::
        KL = \sum_i \log\frac{\sigma_{p,i}}{\sigma_{q,i}}
             + \frac{\sigma_{q,i}^2 + (\mu_{q,i} - \mu_{p,i})^2}{2\sigma_{p,i}^2}
             - \frac12

    With ``per_component=True`` the per-dimension terms are returned
    instead of their sum.

    >>> import numpy as np
    >>> z = np.zeros(2, "float32")
    >>> float(kl_diag_gaussians(z, z, z, z).eval())
    0.0
    """
    terms = (
        log_sigma_p
        - log_sigma_q
        + 0.5 * (pt.exp(2.0 * log_sigma_q) + pt.sqr(mu_q - mu_p)) * pt.exp(-2.0 * log_sigma_p)
        - 0.5
    )
    return terms if per_component else terms.sum(axis=-1)
