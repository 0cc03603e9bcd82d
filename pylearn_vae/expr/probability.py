r"""Log densities and KL divergences as pure functions of symbolic tensors.

All functions sum over the last axis (the data or latent dimension) and
broadcast over any leading axes, so a leading "samples" axis works.
"""

from __future__ import annotations

import math

import numpy as np
import pytensor
import pytensor.tensor as pt

from pylearn_vae.expr.basic import log_sum_exp
from pylearn_vae.utils import constantX

__all__ = [
    "log_bernoulli",
    "log_diag_gaussian",
    "log_mixture_of_diag_gaussians",
    "pairwise_log_diag_gaussian",
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
    >>> import pytensor
    >>> with pytensor.config.change_flags(warn_float64="ignore"):  # float64 inside, on purpose
    ...     round(float(log_mixture_of_diag_gaussians(z[0], np.zeros((2, 1), "float32"), z.repeat(2, 0), w).eval()), 6)
    -0.918939
    """
    per_component = pairwise_log_diag_gaussian(x, means, log_sigmas)
    return log_sum_exp(per_component + log_weights, axis=-1)


def pairwise_log_diag_gaussian(x, means, log_sigmas, reflect_along=None):
    r"""Log-density of every ``x`` under every one of K diagonal Gaussians: shape (..., K).

    ``x`` has shape (..., d); ``means`` and ``log_sigmas`` (K, d). With
    ``reflect_along`` (K, d), component k is the density of
    :math:`H_k x` (:math:`H_k` the Householder reflection along its row,
    as in a one-reflection Householder-flow posterior), which is the density
    of ``x`` because :math:`H_k` preserves volume.

    The result equals ``log_diag_gaussian(x[..., None, :], means, log_sigmas)``
    but never builds the (..., K, d) tensor: with :math:`a = \sigma^{-2}`,

    .. math::
        \sum_i a_{ki} (x_i - s_k v_{ki} - \mu_{ki})^2 =
            x^2 \cdot a_k - 2 x \cdot (a_k \mu_k) + a_k \cdot \mu_k^2
            - 2 s_k\, x \cdot (a_k v_k) + s_k^2\, a_k \cdot v_k^2
            + 2 s_k\, a_k \cdot (v_k \mu_k),

    with :math:`s_k = 2 (x \cdot v_k) / (v_k \cdot v_k)` (zero without a
    reflection), so every term over d is a matrix product of (N, d) by
    (d, K). Those sums cancel where :math:`\sigma` is small (a float32
    expansion is off by tenths of a nat at sigma = 0.05 and by whole nats
    at 0.01), so they run in float64 on inputs centred on the means'
    average :math:`c` (:math:`H_k x - \mu_k = H_k (x - c) - (\mu_k - H_k
    c)`), and only the (..., K) result returns to the input's dtype. The
    float64 products are small next to the rest of a training step.

    >>> import numpy as np
    >>> z = np.zeros((1, 1), "float32")
    >>> import pytensor
    >>> with pytensor.config.change_flags(warn_float64="ignore"):  # float64 inside, on purpose
    ...     [round(float(v), 6) for v in pairwise_log_diag_gaussian(z, z.repeat(2, 0), z.repeat(2, 0)).eval()[0]]
    [-0.918939, -0.918939]
    """
    x = pt.as_tensor_variable(x)
    dtype = x.dtype
    # Deliberate float64 (see above): allowed even where a user's flags
    # refuse accidental float64 variables.
    with pytensor.config.change_flags(warn_float64="ignore"):
        per_pair = _pairwise_quadratic_form(x, means, log_sigmas, reflect_along).astype(dtype)
    k = pt.as_tensor_variable(means).shape[0]
    return per_pair.reshape((*[x.shape[i] for i in range(x.ndim - 1)], k))


def _pairwise_quadratic_form(x, means, log_sigmas, reflect_along):
    """:func:`pairwise_log_diag_gaussian` in float64 for flattened ``x``: shape (N, K)."""
    mu, log_sigma = (pt.as_tensor_variable(a).astype("float64") for a in (means, log_sigmas))
    centre = mu.mean(axis=0)
    flat = x.reshape((-1, x.shape[-1])).astype("float64") - centre
    a = pt.exp(-2.0 * log_sigma)
    if reflect_along is None:
        m = mu - centre
    else:
        v = pt.as_tensor_variable(reflect_along).astype("float64")
        two_over_norm = 2.0 / ((v * v).sum(axis=1) + np.finfo("float64").tiny)  # (K,)
        m = mu - centre + (two_over_norm * pt.dot(v, centre))[:, None] * v  # mu_k - H_k c
    quadratic = (
        pt.dot(pt.sqr(flat), a.T) - 2.0 * pt.dot(flat, (a * m).T) + (a * pt.sqr(m)).sum(axis=1)
    )
    if reflect_along is not None:
        s = pt.dot(flat, v.T) * two_over_norm  # (N, K)
        quadratic = (
            quadratic
            - 2.0 * s * pt.dot(flat, (a * v).T)
            + pt.sqr(s) * (a * pt.sqr(v)).sum(axis=1)
            + 2.0 * s * (a * v * m).sum(axis=1)
        )
    normaliser = pt.cast(x.shape[-1], "float64") * _LOG_2PI + 2.0 * log_sigma.sum(axis=1)
    # Rounding can leave a tiny negative square where x sits on a mean.
    return -0.5 * (normaliser + pt.maximum(quadratic, 0.0))


def log_softmax(logits, axis=-1):
    """``logits`` minus their log-sum-exp: normalised log-probabilities.

    Written out rather than with ``pytensor.tensor.special.log_softmax``,
    whose gradient creates float64 constants in float32 graphs (PyTensor 3.3).
    """
    return logits - log_sum_exp(logits, axis=axis, keepdims=True)


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
