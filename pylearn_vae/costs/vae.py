"""Costs for the VAE framework."""

from __future__ import annotations

from collections import OrderedDict

from pylearn_vae.costs.cost import Cost
from pylearn_vae.expr.basic import mean
from pylearn_vae.models.vae import _check_num_samples
from pylearn_vae.utils import sharedX

__all__ = ["VAECriterion", "ImportanceSamplingCriterion"]


def _check_weight(value) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        weight = float("nan")
    if isinstance(value, bool) or not 0.0 <= weight <= 1.0:
        raise ValueError(f"VAECriterion: kl_weight must be a number in [0, 1], got {value!r}")
    return weight


class VAECriterion(Cost):
    r"""Negative VAE lower bound, averaged over the batch.

    .. math:: C = -\frac1N \sum_n \mathcal{L}(\mathbf{x}_n)

    Parameters
    ----------
    num_samples : int
        Posterior samples per example in the reconstruction term.
    kl_weight : float, optional
        An addition to Pylearn2: when given, training minimises
        :math:`-\frac1N \sum_n (\mathbb{E}_q[\log p(\mathbf{x}_n\mid\mathbf{z})]
        - \beta\, KL_n)` with :math:`\beta` the shared variable ``kl_weight``
        (starting at this value), which
        :class:`~pylearn_vae.train_extensions.kl_warm_up.KLWarmUp` raises to 1.
        The monitored ``objective`` stays the negative bound itself.
    """

    def __init__(self, num_samples: int = 1, kl_weight=None) -> None:
        self.num_samples = _check_num_samples(num_samples)
        self.kl_weight = (
            None if kl_weight is None else sharedX(_check_weight(kl_weight), "kl_weight")
        )

    def expr(self, model, data, **kwargs):
        model.input_space.validate(data)
        return -mean(model.log_likelihood_lower_bound(data, self.num_samples))

    def training_expr(self, model, data, **kwargs):
        if self.kl_weight is None:
            return self.expr(model, data, **kwargs)
        model.input_space.validate(data)
        kl, expectation = model.log_likelihood_lower_bound(
            data, self.num_samples, return_individual_terms=True
        )
        return -mean(expectation - self.kl_weight * kl)

    def get_monitoring_channels(self, model, data, **kwargs) -> OrderedDict:
        """``kl_divergence_term`` and ``expectation_term`` (the reconstruction cost).

        ``expectation_term`` is reported as a cost (negated log-likelihood),
        so that ``kl_divergence_term + expectation_term`` equals the objective.
        """
        kl, expectation = model.log_likelihood_lower_bound(
            data, self.num_samples, return_individual_terms=True
        )
        rval = OrderedDict()
        rval["kl_divergence_term"] = mean(kl)
        rval["expectation_term"] = -mean(expectation)
        if self.kl_weight is not None:
            rval["kl_weight"] = self.kl_weight
        return rval


class ImportanceSamplingCriterion(Cost):
    r"""Negative importance-sampling estimate of the log-likelihood.

    .. math:: C = -\frac1N\sum_n \log\frac1K\sum_k
              \frac{p(\mathbf{x}_n, \mathbf{z}^{(k)})}{q(\mathbf{z}^{(k)}\mid\mathbf{x}_n)}

    Parameters
    ----------
    num_samples : int
        Importance samples per example (K).
    """

    def __init__(self, num_samples: int) -> None:
        self.num_samples = _check_num_samples(num_samples)

    def expr(self, model, data, **kwargs):
        model.input_space.validate(data)
        return -mean(model.log_likelihood_approximation(data, self.num_samples))
