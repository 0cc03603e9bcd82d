"""Small random data sets for tests and examples."""

from __future__ import annotations

from pylearn_vae.datasets.dense_design_matrix import DenseDesignMatrix
from pylearn_vae.utils.rng import make_np_rng

__all__ = ["random_dense_design_matrix", "random_binary_design_matrix"]


def random_dense_design_matrix(
    rng, num_examples: int, dim: int, num_classes: int = 2
) -> DenseDesignMatrix:
    """A design matrix of standard normal values with random integer labels."""
    rng = make_np_rng(rng)
    X = rng.randn(num_examples, dim)
    y = rng.randint(0, num_classes, (num_examples, 1)) if num_classes else None
    return DenseDesignMatrix(X=X, y=y)


def random_binary_design_matrix(
    rng, num_examples: int, dim: int, prototypes: int = 4, flip: float = 0.05
) -> DenseDesignMatrix:
    """Binary data with structure: noisy copies of a few random prototypes."""
    rng = make_np_rng(rng)
    protos = rng.uniform(size=(prototypes, dim)) < 0.5
    X = protos[rng.randint(0, prototypes, size=num_examples)] ^ (
        rng.uniform(size=(num_examples, dim)) < flip
    )
    return DenseDesignMatrix(X=X.astype("float32"))
