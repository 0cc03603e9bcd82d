"""Spaces describe the shape of a batch: ``VectorSpace``, ``Conv2DSpace``, ``CompositeSpace``.

:meth:`Space.format_as` converts a symbolic batch from one space to another
(for instance the rows of a design matrix to images and back);
:meth:`Space.np_format_as` does the same for NumPy arrays.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from pylearn_vae.errors import SpaceMismatchError
from pylearn_vae.utils import floatX

__all__ = ["Space", "VectorSpace", "Conv2DSpace", "CompositeSpace", "SpaceMismatchError"]


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

    def format_as(self, batch, space):
        """Return the symbolic ``batch`` of this space as a batch of ``space``."""
        return _convert(self, batch, space, pt)

    def np_format_as(self, batch, space):
        """Return the NumPy ``batch`` of this space as a batch of ``space``."""
        return _convert(self, np.asarray(batch), space, np)


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


class Conv2DSpace(Space):
    """Batches of multi-channel images: 4-d tensors.

    Parameters
    ----------
    shape : pair of int
        Image (rows, columns).
    num_channels : int
        Number of channels (``channels`` is Pylearn2's older spelling).
    axes : sequence of {'b', 0, 1, 'c'}
        Order of the batch, row, column and channel axes of a batch.
    dtype : str
        ``'floatX'`` or a NumPy dtype name.
    """

    #: Pylearn2's default axis order.
    default_axes = ("b", 0, 1, "c")

    def __init__(
        self, shape, channels=None, num_channels=None, axes=None, dtype: str = "floatX"
    ) -> None:
        if (channels is None) == (num_channels is None):
            raise ValueError("Conv2DSpace needs exactly one of num_channels and channels")
        num_channels = channels if num_channels is None else num_channels
        shape = tuple(shape)
        if len(shape) != 2 or not all(_is_positive_int(n) for n in shape):
            raise ValueError(f"Conv2DSpace shape must be two positive integers, got {shape!r}")
        if not _is_positive_int(num_channels):
            raise ValueError(
                f"Conv2DSpace num_channels must be a positive integer, got {num_channels!r}"
            )
        axes = self.default_axes if axes is None else tuple(axes)
        if sorted(map(str, axes)) != sorted(map(str, self.default_axes)) or len(axes) != 4:
            raise ValueError(f"Conv2DSpace axes must order 'b', 0, 1 and 'c', got {axes!r}")
        self.shape = tuple(int(n) for n in shape)
        self.num_channels = int(num_channels)
        self.axes = axes
        self._dtype = dtype

    @property
    def dtype(self) -> str:
        return floatX() if self._dtype == "floatX" else self._dtype

    def __eq__(self, other) -> bool:
        return (
            type(other) is Conv2DSpace
            and other.shape == self.shape
            and other.num_channels == self.num_channels
            and tuple(other.axes) == tuple(self.axes)
        )

    def __hash__(self) -> int:
        return hash(("Conv2DSpace", self.shape, self.num_channels, self.axes))

    def __repr__(self) -> str:
        return (
            f"Conv2DSpace(shape={list(self.shape)}, num_channels={self.num_channels}, "
            f"axes={self.axes!r})"
        )

    def get_total_dimension(self) -> int:
        return self.shape[0] * self.shape[1] * self.num_channels

    def _sizes(self, batch_size):
        size = {"b": batch_size, 0: self.shape[0], 1: self.shape[1], "c": self.num_channels}
        return tuple(size[axis] for axis in self.axes)

    def make_theano_batch(
        self, name: str | None = None, dtype: str | None = None, batch_size: int | None = None
    ):
        """Return a symbolic 4-d tensor with the static shape of this space."""
        return pt.tensor4(name=name, dtype=dtype or self.dtype, shape=self._sizes(batch_size))

    make_batch = make_theano_batch

    def validate(self, batch) -> None:
        """Raise :class:`SpaceMismatchError` unless ``batch`` is 4-d with this shape."""
        if isinstance(batch, Variable):
            if batch.ndim != 4:
                raise SpaceMismatchError(f"{self} expects a 4-d batch, got {batch.ndim}-d {batch}")
            sizes = batch.type.shape
        else:
            sizes = np.shape(batch)
            if len(sizes) != 4:
                raise SpaceMismatchError(f"{self} expects a 4-d batch, got shape {sizes}")
        for axis, got, want in zip(self.axes, sizes, self._sizes(None)):
            if axis != "b" and got is not None and got != want:
                raise SpaceMismatchError(
                    f"{self} expects size {want} on axis {axis!r}, got shape {tuple(sizes)}"
                )


def _is_positive_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


def _convert(source, batch, target, lib):
    """Convert ``batch`` between spaces with ``lib`` (``pytensor.tensor`` or NumPy).

    Images are flattened in ('b', 0, 1, 'c') order (Pylearn2's convention).
    """
    if source == target:
        return batch
    if source.get_total_dimension() != target.get_total_dimension():
        raise SpaceMismatchError(
            f"cannot format a batch of {source} as {target}: they have "
            f"{source.get_total_dimension()} and {target.get_total_dimension()} dimensions"
        )
    canonical = Conv2DSpace.default_axes
    if isinstance(source, Conv2DSpace):
        order = tuple(source.axes.index(axis) for axis in canonical)
        batch = batch.transpose(order).reshape((batch.shape[0], -1))
        source = VectorSpace(source.get_total_dimension())
    if isinstance(source, VectorSpace) and isinstance(target, VectorSpace):
        return batch
    if isinstance(source, VectorSpace) and isinstance(target, Conv2DSpace):
        images = batch.reshape((batch.shape[0], *target.shape, target.num_channels))
        return images.transpose(tuple(canonical.index(axis) for axis in target.axes))
    raise NotImplementedError(f"cannot format a batch of {source} as {target}")


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
