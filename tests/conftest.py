"""Shared test configuration: strict PyTensor flags and small model factories."""

from __future__ import annotations

import numpy as np
import pytensor
import pytest

from pylearn_vae.models.mlp import MLP, RectifiedLinear
from pylearn_vae.models.vae import VAE
from pylearn_vae.models.vae.conditional import BernoulliVector, DiagonalGaussian
from pylearn_vae.models.vae.prior import DiagonalGaussianPrior


def pytest_runtest_setup(item):
    """Tests marked ``jax`` (or run with a JAX fixture parameter so marked)
    are skipped when the optional [jax] extra is not installed."""
    if item.get_closest_marker("jax") is not None:
        pytest.importorskip("jax", reason="the JAX backend needs the [jax] extra")


@pytest.fixture(scope="session", autouse=True)
def strict_pytensor():
    """An optimisation or shape-inference failure is a test failure, and any
    float64 variable created while building a graph raises (the package's
    graphs are float32 end to end); tests that need float64 say so."""
    with pytensor.config.change_flags(
        on_opt_error="raise", on_shape_error="raise", warn_float64="raise"
    ):
        yield


def make_vae(
    nvis=12,
    nhid=3,
    hidden=8,
    seed=0,
    irange=0.1,
    learn_prior=True,
    layer=RectifiedLinear,
    prior=None,
    posterior=None,
    **kwargs,
) -> VAE:
    """A small Bernoulli-output VAE shaped like the seed model (a diagonal
    Gaussian prior and posterior unless ``prior`` or ``posterior`` is given)."""
    return VAE(
        nvis=nvis,
        nhid=nhid,
        prior=DiagonalGaussianPrior() if prior is None else prior,
        conditional=BernoulliVector(
            name="conditional",
            mlp=MLP(
                layer_name="decoder", layers=[layer(layer_name="h_1", dim=hidden, irange=irange)]
            ),
        ),
        posterior=posterior
        or DiagonalGaussian(
            name="posterior",
            mlp=MLP(
                layer_name="encoder", layers=[layer(layer_name="h_e_1", dim=hidden, irange=irange)]
            ),
        ),
        learn_prior=learn_prior,
        seed=seed,
        **kwargs,
    )


def binary_data(n, nvis, seed=0, prototypes=4, flip=0.05) -> np.ndarray:
    """Binary vectors: noisy copies of a few random prototypes (learnable structure)."""
    rng = np.random.default_rng(seed)
    protos = rng.random((prototypes, nvis)) < 0.5
    picks = protos[rng.integers(0, prototypes, size=n)]
    flips = rng.random((n, nvis)) < flip
    return (picks ^ flips).astype("float32")


@pytest.fixture(scope="module")
def deliberate_float64():
    """For modules whose graphs hold float64 on purpose (the mixture priors'
    pairwise log-density, whose docstring says why)."""
    with pytensor.config.change_flags(warn_float64="ignore"):
        yield


@pytest.fixture
def float64_graphs():
    """Allow float64 variables (for finite-difference checks)."""
    with pytensor.config.change_flags(warn_float64="ignore"):
        yield
