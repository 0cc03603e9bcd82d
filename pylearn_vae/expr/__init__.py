"""Pure symbolic maths: log densities, KL divergences, log-sum-exp."""

from pylearn_vae.expr.basic import log_sum_exp, mean
from pylearn_vae.expr.probability import (
    kl_diag_gaussians,
    log_bernoulli,
    log_diag_gaussian,
)

__all__ = ["log_sum_exp", "mean", "log_bernoulli", "log_diag_gaussian", "kl_diag_gaussians"]
