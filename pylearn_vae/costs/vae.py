"""Costs for the VAE framework."""

from __future__ import annotations

from collections import OrderedDict

from pylearn_vae.costs.cost import Cost
from pylearn_vae.expr.basic import mean
from pylearn_vae.models.vae import _check_num_samples

__all__ = ["VAECriterion", "ImportanceSamplingCriterion"]


class VAECriterion(Cost):
    r"""Negative VAE lower bound, averaged over the batch.

    .. math:: C = -\frac1N \sum_n \mathcal{L}(\mathbf{x}_n)

    Parameters
    ----------
    num_samples : int
        Posterior samples per example in the reconstruction term.
    """

    def __init__(self, num_samples: int = 1) -> None:
        self.num_samples = _check_num_samples(num_samples)

    def expr(self, model, data, **kwargs):
        model.input_space.validate(data)
        return -mean(model.log_likelihood_lower_bound(data, self.num_samples))

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
