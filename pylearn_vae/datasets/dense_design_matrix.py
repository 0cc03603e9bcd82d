"""``DenseDesignMatrix``: a data set held as a matrix, one example per row."""

from __future__ import annotations

import numpy as np

from pylearn_vae.space import Conv2DSpace, VectorSpace
from pylearn_vae.utils import floatX
from pylearn_vae.utils.rng import make_np_rng

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
    axes : sequence of {'b', 0, 1, 'c'}
        Axis order of topological views (:attr:`X_topo_space`).
    rng : RandomState or seed, optional
        Generator for :meth:`get_batch_design` / :meth:`get_batch_topo`.
    view_converter, preprocessor
        Accepted for Pylearn2 compatibility; ``preprocessor`` is not supported.
    image_shape : tuple of int, optional
        Shape of one example as an image (rows, cols), for viewers.
    """

    #: yaml_parse stores the YAML that built a data set in ``yaml_src``.
    records_yaml_src = True

    #: Pylearn2's default seed for a data set's generator.
    _default_seed = (17, 2, 946)

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
        self.rng = make_np_rng(rng, default_seed=list(self._default_seed))
        #: The YAML that built this data set (set by yaml_parse; ``Train``
        #: copies it to ``model.dataset_yaml_src``).
        self.yaml_src: str | None = None

    @property
    def X_topo_space(self) -> Conv2DSpace:
        """The space of topological views: images of ``image_shape``, one channel."""
        if self.image_shape is None:
            raise ValueError(
                f"{type(self).__name__} has no image shape, so it has no topological view; "
                "give image_shape (or topo_view) when building it"
            )
        channels = self.X.shape[1] // (self.image_shape[0] * self.image_shape[1])
        return Conv2DSpace(shape=self.image_shape, num_channels=channels, axes=self.axes)

    def get_design_matrix(self, topo=None) -> np.ndarray:
        """The design matrix, or ``topo`` (a batch of :attr:`X_topo_space`) as one."""
        if topo is None:
            return self.X
        return self.X_topo_space.np_format_as(topo, self.X_space)

    def get_num_examples(self) -> int:
        return int(self.X.shape[0])

    def get_data_specs(self):
        return (self.X_space, "features")

    def get_topological_view(self, mat=None) -> np.ndarray:
        """Rows of ``mat`` (default: every example) as images in :attr:`X_topo_space`."""
        mat = self.X if mat is None else np.asarray(mat)
        return self.X_space.np_format_as(mat, self.X_topo_space)

    def get_batch_design(self, batch_size: int, include_labels: bool = False):
        """``batch_size`` consecutive examples from a random position (design matrix)."""
        n = self.get_num_examples()
        if not 1 <= batch_size <= n:
            raise ValueError(
                f"{type(self).__name__}: batch_size must be in [1, {n}], got {batch_size}"
            )
        start = int(self.rng.randint(n - batch_size + 1))
        batch = self.X[start : start + batch_size]
        if include_labels:
            if self.y is None:
                raise ValueError(f"{type(self).__name__} has no labels")
            return batch, self.y[start : start + batch_size]
        return batch

    def get_batch_topo(self, batch_size: int, include_labels: bool = False):
        """Like :meth:`get_batch_design`, as images in :attr:`X_topo_space`."""
        if include_labels:
            batch, labels = self.get_batch_design(batch_size, include_labels=True)
            return self.get_topological_view(batch), labels
        return self.get_topological_view(self.get_batch_design(batch_size))

    def adjust_for_viewer(self, X) -> np.ndarray:
        """Scale ``X`` into [-1, 1] (a viewer's range) by its largest magnitude."""
        X = np.asarray(X)
        scale = np.abs(X).max(initial=0.0)
        return X / scale if scale > 0 else X.copy()

    def iterator(self, mode: str = "sequential", batch_size: int = 100, rng=None):
        """Yield batches of rows of ``X``."""
        for idx in batch_indices(self.get_num_examples(), batch_size, mode, rng):
            yield self.X[idx]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.X.shape[0]} examples x {self.X.shape[1]} features)"
