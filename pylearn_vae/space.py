"""Spaces describe the shape of a batch: ``VectorSpace`` and ``CompositeSpace``."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from pylearn_vae.utils import floatX

__all__ = ["Space", "VectorSpace", "CompositeSpace", "SpaceMismatchError"]


class SpaceMismatchError(ValueError):
    """A batch does not belong to the space it was checked against."""


class Space:
    """Base class of spaces: a set of batches of a given shape."""

    def get_total_dimension(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} does not define get_total_dimension")

    def make_theano_batch(
        self, name: str | None = None, dtype: str | None = None, batch_size: int | None = None
    ):
        raise NotImplementedError(f"{type(self).__name__} does not define make_theano_batch")

    def validate(self, batch) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not define validate")

    def np_validate(self, batch) -> None:
        """Validate a numeric batch (same checks as :meth:`validate`)."""
        self.validate(batch)

    # Pylearn2 spelling kept for compatibility.
    make_batch = make_theano_batch


class VectorSpace(Space):
    """Batches of vectors: matrices of shape ``(batch, dim)``.

    Parameters
    ----------
    dim : int
        Width of each vector.
    dtype : str
        ``'floatX'`` (the package float dtype) or a NumPy dtype name.
    """

    def __init__(self, dim: int, dtype: str = "floatX", sparse: bool = False) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"VectorSpace dim must be a positive integer, got {dim!r}")
        if sparse:
            raise NotImplementedError("sparse VectorSpace is not supported by pylearn_vae")
        self.dim = int(dim)
        self._dtype = dtype

    @property
    def dtype(self) -> str:
        return floatX() if self._dtype == "floatX" else self._dtype

    def __eq__(self, other) -> bool:
        return type(other) is VectorSpace and other.dim == self.dim

    def __hash__(self) -> int:
        return hash(("VectorSpace", self.dim))

    def __repr__(self) -> str:
        return f"VectorSpace(dim={self.dim})"

    def get_total_dimension(self) -> int:
        return self.dim

    def make_theano_batch(
        self, name: str | None = None, dtype: str | None = None, batch_size: int | None = None
    ):
        """Return a symbolic matrix of static shape ``(batch_size, dim)``.

        ``batch_size=None`` leaves the number of rows free; a fixed size
        lets backends that need concrete shapes (JAX) compile the graph.
        """
        return pt.matrix(name=name, dtype=dtype or self.dtype, shape=(batch_size, self.dim))

    make_batch = make_theano_batch

    def validate(self, batch) -> None:
        """Raise :class:`SpaceMismatchError` unless ``batch`` is ``(n, dim)``.

        Works on symbolic variables (checks ndim and any static width) and
        on arrays (checks shape and that values are finite numbers).
        """
        if isinstance(batch, Variable):
            if batch.ndim != 2:
                raise SpaceMismatchError(
                    f"expected a matrix (batch, {self.dim}) for {self}, got a "
                    f"{batch.ndim}-d variable {batch}"
                )
            width = batch.type.shape[1]
            if width is not None and width != self.dim:
                raise SpaceMismatchError(f"data has {width} columns but {self} expects {self.dim}")
            return
        array = np.asarray(batch)
        if array.ndim != 2:
            raise SpaceMismatchError(
                f"expected an array of shape (batch, {self.dim}) for {self}, got shape {array.shape}"
            )
        if array.shape[1] != self.dim:
            raise SpaceMismatchError(
                f"data has {array.shape[1]} columns but {self} expects {self.dim}"
            )
        if not np.issubdtype(array.dtype, np.number) and array.dtype != np.bool_:
            raise SpaceMismatchError(f"expected numeric data, got dtype {array.dtype}")


class CompositeSpace(Space):
    """A tuple of spaces; a batch is a tuple with one batch per component."""

    def __init__(self, components) -> None:
        components = list(components)
        for c in components:
            if not isinstance(c, Space):
                raise TypeError(f"CompositeSpace components must be spaces, got {c!r}")
        self.components = components

    def __eq__(self, other) -> bool:
        return type(other) is CompositeSpace and other.components == self.components

    def __hash__(self) -> int:
        return hash(("CompositeSpace", tuple(self.components)))

    def __repr__(self) -> str:
        return f"CompositeSpace([{', '.join(repr(c) for c in self.components)}])"

    def get_total_dimension(self) -> int:
        return sum(c.get_total_dimension() for c in self.components)

    def make_theano_batch(
        self, name: str | None = None, dtype: str | None = None, batch_size: int | None = None
    ):
        return tuple(
            c.make_theano_batch(None if name is None else f"{name}[{i}]", dtype, batch_size)
            for i, c in enumerate(self.components)
        )

    make_batch = make_theano_batch

    def validate(self, batch) -> None:
        if not isinstance(batch, tuple) or len(batch) != len(self.components):
            raise SpaceMismatchError(
                f"{self} expects a tuple of {len(self.components)} batches, got {type(batch).__name__}"
            )
        for component, sub in zip(self.components, batch):
            component.validate(sub)
