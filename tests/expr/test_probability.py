"""Log densities and KL divergences against NumPy closed forms."""

import math

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pylearn_vae.expr import kl_diag_gaussians, log_bernoulli, log_diag_gaussian, log_sum_exp
from pylearn_vae.utils import floatX


@pytest.fixture(scope="module")
def densities():
    """One compiled function for all three densities (float32 graph)."""
    x, a, b, c, d = (pt.tensor3(dtype=floatX()) for _ in range(5))
    outs = [
        log_bernoulli(x, a),
        log_diag_gaussian(x, a, b),
        kl_diag_gaussians(a, b, c, d),
        kl_diag_gaussians(a, b, c, d, per_component=True),
    ]
    return pytensor.function([x, a, b, c, d], outs, on_unused_input="ignore")


def _rand(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype("float32")


@pytest.mark.compiles
def test_log_bernoulli_matches_closed_form(densities):
    rng = np.random.default_rng(1)
    shape = (3, 4, 7)
    x = (rng.random(shape) < 0.5).astype("float32")
    logits = _rand(rng, shape, 4.0)
    z = _rand(rng, shape)
    out = densities(x, logits, z, z, z)[0]
    p = 1.0 / (1.0 + np.exp(-logits.astype("float64")))
    expected = (x * np.log(p) + (1 - x) * np.log1p(-p)).sum(axis=-1)
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.compiles
def test_log_bernoulli_is_finite_for_extreme_logits(densities):
    x = np.array([[[1.0, 0.0, 1.0, 0.0]]], dtype="float32")
    logits = np.array([[[200.0, -200.0, -200.0, 200.0]]], dtype="float32")
    z = np.zeros_like(x)
    out = densities(x, logits, z, z, z)[0]
    # Two certain-correct units contribute 0, two certain-wrong ones -200 each.
    np.testing.assert_allclose(out, [[-400.0]], rtol=1e-6)


@pytest.mark.compiles
def test_log_diag_gaussian_matches_closed_form(densities):
    rng = np.random.default_rng(2)
    shape = (2, 5, 6)
    x, mu, log_sigma = _rand(rng, shape, 2.0), _rand(rng, shape), _rand(rng, shape, 0.5)
    out = densities(x, mu, log_sigma, x, x)[1]
    x64, mu64, ls64 = (v.astype("float64") for v in (x, mu, log_sigma))
    sigma = np.exp(ls64)
    pdf = np.exp(-0.5 * ((x64 - mu64) / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)
    np.testing.assert_allclose(out, np.log(pdf).sum(axis=-1), rtol=1e-5, atol=1e-4)


@pytest.mark.compiles
def test_kl_hand_computed_value(densities):
    # KL(N(1, 0.5^2) || N(0, 2^2)) = log(2/0.5) + (0.25 + 1)/(2*4) - 0.5
    expected = math.log(4.0) + 1.25 / 8.0 - 0.5
    one = np.ones((1, 1, 1), "float32")
    out = densities(one, one, one * math.log(0.5), 0 * one, one * math.log(2.0))
    np.testing.assert_allclose(out[2], [[expected]], rtol=1e-6)
    np.testing.assert_allclose(out[3], [[[expected]]], rtol=1e-6)


@pytest.mark.compiles
def test_kl_matches_monte_carlo(densities):
    """Analytic KL against a 400k-sample Monte Carlo estimate (tolerance 4 standard errors)."""
    rng = np.random.default_rng(3)
    d = 4
    mq, lq, mp, lp = (_rand(rng, (1, 1, d), 0.6) for _ in range(4))
    analytic = densities(mq, mq, lq, mp, lp)[2].item()
    n = 400_000
    z = mq[0, 0] + np.exp(lq[0, 0]) * rng.standard_normal((n, d))

    def logpdf(v, m, ls):
        return (-0.5 * np.log(2 * np.pi) - ls - 0.5 * ((v - m) / np.exp(ls)) ** 2).sum(axis=-1)

    log_ratio = logpdf(z, mq[0, 0], lq[0, 0]) - logpdf(z, mp[0, 0], lp[0, 0])
    stderr = log_ratio.std() / np.sqrt(n)
    assert abs(log_ratio.mean() - analytic) < 4 * stderr + 1e-4
    assert analytic > 0.0


@pytest.mark.compiles
def test_kl_is_zero_for_equal_distributions(densities):
    rng = np.random.default_rng(4)
    m, ls = _rand(rng, (2, 3, 5)), _rand(rng, (2, 3, 5))
    np.testing.assert_allclose(densities(m, m, ls, m, ls)[2], np.zeros((2, 3)), atol=1e-6)


@pytest.mark.compiles
def test_log_sum_exp_stable_and_exact():
    A = pt.matrix(dtype=floatX())
    f = pytensor.function(
        [A], [log_sum_exp(A, axis=0), log_sum_exp(A, axis=1, keepdims=True), log_sum_exp(A)]
    )
    rng = np.random.default_rng(5)
    a = _rand(rng, (4, 3), 3.0)
    ref0 = np.log(np.exp(a.astype("float64")).sum(axis=0))
    out0, out1, out_all = f(a)
    np.testing.assert_allclose(out0, ref0, rtol=1e-6)
    assert out1.shape == (4, 1)
    np.testing.assert_allclose(out_all, np.log(np.exp(a.astype("float64")).sum()), rtol=1e-6)
    big = np.array([[1000.0, -1000.0], [1000.0, -np.inf]], "float32")
    out0, _, _ = f(big)
    np.testing.assert_allclose(out0, [1000.0 + math.log(2.0), -1000.0], rtol=1e-6)
    all_neg_inf = np.full((2, 2), -np.inf, "float32")
    assert np.all(np.isneginf(f(all_neg_inf)[0]))


@pytest.mark.compiles
def test_log_diag_gaussian_is_finite_for_tiny_sigma():
    """x == mu exactly with sigma = e^-60: (x - mu)^2 * exp(-2 log sigma) would be 0 * inf."""
    x = pt.vector(dtype=floatX())
    ls = pt.vector(dtype=floatX())
    f = pytensor.function([x, ls], log_diag_gaussian(x, x, ls))
    out = f(np.ones(2, "float32"), np.full(2, -60.0, "float32"))
    expected = 2 * (-0.5 * math.log(2 * math.pi) + 60.0)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
