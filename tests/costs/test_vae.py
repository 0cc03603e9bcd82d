"""VAE costs: the objective equals its monitored terms; errors on bad arguments."""

import numpy as np
import pytensor.tensor as pt
import pytest

from pylearn_vae.compile import function
from pylearn_vae.costs.cost import Cost
from pylearn_vae.costs.vae import ImportanceSamplingCriterion, VAECriterion
from pylearn_vae.utils import floatX
from tests.helpers.models import binary_data, make_vae


@pytest.mark.compiles
def test_objective_is_kl_plus_expectation_with_shared_noise():
    v = make_vae(irange=0.5, seed=3)
    X = v.get_input_space().make_theano_batch()
    eps = pt.tensor3(dtype=floatX())
    v.posterior.sample_from_epsilon = lambda shape: eps
    cost = VAECriterion(num_samples=2)
    channels = cost.get_monitoring_channels(v, X)
    assert list(channels) == ["kl_divergence_term", "expectation_term"]
    is_cost = ImportanceSamplingCriterion(num_samples=2).expr(v, X)
    elbo_mc = -v.log_likelihood_lower_bound(X, 2, approximate_kl=True).mean()
    f = function([X, eps], [cost.expr(v, X), *channels.values(), is_cost, elbo_mc])
    x = binary_data(30, 12, seed=4)
    noise = np.random.default_rng(1).standard_normal((2, 30, 3)).astype("float32")
    objective, kl, expectation, is_value, elbo_mc_value = f(x, noise)
    np.testing.assert_allclose(objective, kl + expectation, rtol=1e-6)
    assert kl > 0 and expectation > 0
    # Same noise: log of a mean >= mean of logs (Jensen), so the importance-
    # sampling cost is below the Monte Carlo-KL ELBO cost.
    assert is_value < elbo_mc_value


def test_base_cost_requires_expr_and_gradients_cover_params():
    with pytest.raises(NotImplementedError, match="Cost does not implement expr"):
        Cost().expr(None, None)
    v = make_vae()
    grads, updates = VAECriterion().get_gradients(v, v.get_input_space().make_theano_batch())
    assert list(grads) == v.get_params() and not updates
