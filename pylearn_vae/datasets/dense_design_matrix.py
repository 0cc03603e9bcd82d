"""``DenseDesignMatrix``: a data set held as a matrix, one example per row."""

from __future__ import annotations

import numpy as np

from pylearn_vae.space import VectorSpace
from pylearn_vae.utils import floatX

__all__ = ["DenseDesignMatrix", "batch_indices"]

_ITERATION_MODES = ("sequential", "shuffled_sequential", "random_uniform")


def batch_indices(num_examples: int, batch_size: int, mode: str, rng=None):
    """Yield index arrays for one pass over ``num_examples`` examples.

    ``sequential`` goes in order; ``shuffled_sequential`` visits every example
    once in a random order (a fresh permutation drawn from ``rng``); both end
    with a smaller batch when ``batch_size`` does not divide the number of
    examples. ``random_uniform`` draws each batch with replacement.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if mode == "sequential":
        order = np.arange(num_examples)
    elif mode == "shuffled_sequential":
        if rng is None:
            raise ValueError("shuffled_sequential iteration needs a random generator")
        order = rng.permutation(num_examples)
    elif mode == "random_uniform":
        if rng is None:
            raise ValueError("random_uniform iteration needs a random generator")
        for _ in range(-(-num_examples // batch_size)):
            yield rng.randint(0, num_examples, size=batch_size)
        return
    else:
        raise ValueError(
            f"unknown iteration mode {mode!r}; use one of {', '.join(_ITERATION_MODES)}"
        )
    for start in range(0, num_examples, batch_size):
        yield order[start : start + batch_size]


class DenseDesignMatrix:
    """A data set stored as a design matrix ``X`` (examples x features).

    Parameters
    ----------
    X : array_like
        The design matrix; stored as floatX.
    y : array_like, optional
        Targets (kept for Pylearn2 compatibility; the VAE does not use them).
    axes, view_converter, preprocessor
        Accepted for Pylearn2 compatibility; ``preprocessor`` is not supported.
    image_shape : tuple of int, optional
        Shape of one example as an image (rows, cols), for viewers.
    """

    def __init__(
        self,
        X=None,
        topo_view=None,
        y=None,
        view_converter=None,
        axes=("b", 0, 1, "c"),
        rng=None,
        preprocessor=None,
        fit_preprocessor=False,
        X_labels=None,
        y_labels=None,
        image_shape=None,
    ) -> None:
        if topo_view is not None:
            topo = np.asarray(topo_view)
            X = topo.reshape(topo.shape[0], -1)
            image_shape = image_shape or topo.shape[1:3]
        if X is None:
            raise ValueError("DenseDesignMatrix needs X (or topo_view)")
        if preprocessor is not None:
            raise ValueError("DenseDesignMatrix: preprocessors are not supported by pylearn_vae")
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(
                f"DenseDesignMatrix X must be 2-d (examples x features), got shape {X.shape}"
            )
        if X.shape[0] == 0:
            raise ValueError("DenseDesignMatrix X has no examples")
        self.X = np.ascontiguousarray(X, dtype=floatX())
        self.y = None if y is None else np.asarray(y)
        self.axes = tuple(axes)
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        self.X_space = VectorSpace(self.X.shape[1])

    def get_design_matrix(self) -> np.ndarray:
        return self.X

    def get_num_examples(self) -> int:
        return int(self.X.shape[0])

    def get_data_specs(self):
        return (self.X_space, "features")

    def get_topological_view(self, mat=None) -> np.ndarray:
        """Examples as images ``(batch, rows, cols, 1)`` (needs ``image_shape``)."""
        if self.image_shape is None:
            raise ValueError(f"{type(self).__name__} has no image shape")
        mat = self.X if mat is None else np.asarray(mat)
        return mat.reshape((mat.shape[0], *self.image_shape, 1))

    def iterator(self, mode: str = "sequential", batch_size: int = 100, rng=None):
        """Yield batches of rows of ``X``."""
        for idx in batch_indices(self.get_num_examples(), batch_size, mode, rng):
            yield self.X[idx]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.X.shape[0]} examples x {self.X.shape[1]} features)"
