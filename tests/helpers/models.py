"""Small models and data shared by the tests (and by their subprocess scripts)."""

from __future__ import annotations

import numpy as np

from pylearn_vae.models.mlp import MLP, RectifiedLinear
from pylearn_vae.models.vae import VAE
from pylearn_vae.models.vae.conditional import BernoulliVector, DiagonalGaussian
from pylearn_vae.models.vae.hierarchical import HierarchicalVAE
from pylearn_vae.models.vae.prior import DiagonalGaussianPrior


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


def _network(kind, name, hidden, irange, layer):
    return kind(
        name=name,
        mlp=MLP(layer_name=name, layers=[layer(layer_name="h", dim=hidden, irange=irange)]),
    )


def make_hvae(
    nvis=12,
    nhid=2,
    bottom_nhid=3,
    hidden=8,
    seed=0,
    irange=0.1,
    layer=RectifiedLinear,
    prior=None,
    bottom_posterior=None,
    **kwargs,
) -> HierarchicalVAE:
    """A small two-layer VAE (z2 -> z1 -> x, Bernoulli output): diagonal Gaussian
    prior, posteriors and bottom prior unless ``prior`` or ``bottom_posterior`` is given."""
    return HierarchicalVAE(
        nvis=nvis,
        nhid=nhid,
        bottom_nhid=bottom_nhid,
        prior=DiagonalGaussianPrior() if prior is None else prior,
        conditional=_network(BernoulliVector, "conditional", hidden, irange, layer),
        posterior=_network(DiagonalGaussian, "posterior", hidden, irange, layer),
        bottom_prior=_network(DiagonalGaussian, "bottom_prior", hidden, irange, layer),
        bottom_posterior=bottom_posterior
        or _network(DiagonalGaussian, "bottom_posterior", hidden, irange, layer),
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
