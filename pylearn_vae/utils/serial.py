"""Saving and loading models safely.

``save`` writes atomically (see :mod:`pylearn_vae.utils.files`) and never
writes a model whose parameters are not all finite.

``load`` reads ``.pkl`` files with the restricted unpickler of
:mod:`pylearn_vae.utils.safe_pickle` and ``.h5``/``.hdf5`` files with
:mod:`pylearn_vae.utils.hdf5`: opening a model from someone else cannot run
code from the file or read other files.
"""

from __future__ import annotations

import io
import math
import pickle
import sys
from pathlib import Path

import numpy as np

from pylearn_vae.utils.files import ModelFileError, atomic_path, atomic_write, check_regular_file
from pylearn_vae.utils.safe_pickle import UnsafePickleError, loads

__all__ = [
    "save",
    "load",
    "atomic_write",
    "atomic_path",
    "check_regular_file",
    "check_finite_params",
    "check_savable",
    "params_problem",
    "SizeBound",
    "UnsafePickleError",
    "ModelFileError",
]


H5_SUFFIXES = (".h5", ".hdf5")


def params_problem(model) -> str | None:
    """Why the parameters of ``model`` may not be saved or used, or None if they are fine.

    Every parameter must hold a finite array of floats. Objects without
    ``get_params`` have nothing to check.
    """
    getter = getattr(model, "get_params", None)
    if getter is None:
        return None
    for param in getter():
        value = param.get_value(borrow=True)
        if not hasattr(value, "dtype") or np.dtype(value.dtype).kind != "f":
            return f"parameter {param.name!r} holds {type(value).__name__}, not an array of floats"
        value = np.asarray(value)
        if not np.isfinite(value).all():
            bad = "NaN" if np.isnan(value).any() else "infinite"
            return f"parameter {param.name!r} has {bad} values"
    return None


# Attributes that size a model's parameters (and the arrays its methods allocate).
_SIZE_ATTRIBUTES = ("nvis", "nhid", "dim", "ndim")


class SizeBound:
    """The sizes a model file may declare, given the shapes of its stored parameters.

    A size is believable if a stored parameter has it as a dimension, or if
    it is no larger than the largest stored parameter (a convolutional
    model's 784 pixels need not be any array's dimension: its kernels are
    4x4, but its dense layers hold far more numbers): either way no method
    allocates more per example than the file already holds.
    """

    def __init__(self, shapes) -> None:
        shapes = [tuple(int(n) for n in shape) for shape in shapes]
        self.dims = {n for shape in shapes for n in shape}
        self.largest = max((math.prod(shape) for shape in shapes), default=0)

    def allows(self, value: int) -> bool:
        return value in self.dims or value <= self.largest


def sizes_problem(model) -> str | None:
    """Why the size attributes of a loaded model disagree with its parameters, or None.

    Every ``nvis``/``nhid``/``dim``/``ndim`` integer held by one of the
    model's pylearn_vae objects must be allowed by :class:`SizeBound`: a pickle that pairs small arrays with ``nhid = 10**9`` would
    otherwise make sampling allocate without bound.
    """
    getter = getattr(model, "get_params", None)
    if getter is None:
        return None
    params = list(getter()) + list(getattr(model, "get_prior_params", list)())
    bound = SizeBound(np.shape(p.get_value(borrow=True)) for p in params)
    seen: set[int] = set()
    stack = [model]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, list | tuple):
            stack.extend(obj)
            continue
        if isinstance(obj, dict):
            stack.extend(obj.values())
            continue
        if not type(obj).__module__.startswith("pylearn_vae."):
            continue
        attributes = getattr(obj, "__dict__", {})
        for key in _SIZE_ATTRIBUTES:
            value = attributes.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and not bound.allows(value):
                return (
                    f"{type(obj).__name__}.{key} is {value}, but no parameter in the file "
                    "has that size"
                )
        stack.extend(attributes.values())
    return None


def check_finite_params(model, where: str) -> None:
    """Raise :class:`ModelFileError` if a loaded model's parameters are not finite float arrays."""
    problem = params_problem(model)
    if problem:
        raise ModelFileError(
            f"{where}: {problem}; the file holds a damaged or diverged model; use an earlier "
            "model file or retrain"
        )


def check_savable(model, path) -> None:
    """Raise :class:`ModelFileError` instead of writing a model whose parameters are not finite."""
    problem = params_problem(model)
    if problem:
        raise ModelFileError(
            f"not saving {path}: {problem}; the previous file (if any) is unchanged"
        )


class _NumpyPickler(pickle.Pickler):
    """Pickles JAX arrays as the NumPy arrays they hold.

    Shared variables updated by a JAX-compiled function hold JAX arrays; a
    model file must not need JAX (or a GPU) to be loaded.
    """

    def reducer_override(self, obj):
        jax = sys.modules.get("jax")
        if jax is not None and isinstance(obj, jax.Array):
            return np.asarray(obj).__reduce_ex__(self.protocol)
        return NotImplemented

    protocol = pickle.HIGHEST_PROTOCOL


def _dumps(obj) -> bytes:
    buffer = io.BytesIO()
    _NumpyPickler(buffer, protocol=_NumpyPickler.protocol).dump(obj)
    return buffer.getvalue()


def save(path, obj, on_overwrite: str = "ignore") -> None:
    """Save ``obj`` to ``path`` atomically (``.pkl``: pickle; ``.h5``/``.hdf5``: HDF5).

    A model whose parameters are not all finite is never written: a
    :class:`ModelFileError` is raised and the previous file is kept.

    ``on_overwrite`` is accepted for Pylearn2 compatibility
    (``'ignore'`` or ``'backup'``; the atomic rename makes a backup
    unnecessary, so both behave the same).
    """
    if on_overwrite not in ("ignore", "backup"):
        raise ValueError(f"on_overwrite must be 'ignore' or 'backup', got {on_overwrite!r}")
    path = Path(path)
    suffix = path.suffix.lower()
    check_savable(obj, path)
    if suffix in (".pkl", ".pickle"):
        data = _dumps(obj)
        atomic_write(path, lambda handle: handle.write(data))
    elif suffix in H5_SUFFIXES:
        from pylearn_vae.utils import hdf5

        hdf5.save_model(path, obj)
    else:
        raise ModelFileError(
            f"cannot save {path}: unknown extension {path.suffix!r}; use .pkl, .h5 or .hdf5"
        )


def load(path):
    """Load an object saved by :func:`save`, refusing unsafe pickles.

    Raises :class:`UnsafePickleError` when the file names anything outside
    the allow-list or uses a refused opcode, and :class:`ModelFileError` when
    it is not a regular file, is damaged, or holds a model whose parameters
    are not finite.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in H5_SUFFIXES:
        from pylearn_vae.utils import hdf5

        return hdf5.load_model(path)
    if suffix not in (".pkl", ".pickle"):
        raise ModelFileError(
            f"cannot load {path}: unknown extension {path.suffix!r}; expected .pkl, .h5 or .hdf5"
        )
    check_regular_file(path, "model file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror}") from exc
    obj = loads(data, str(path))
    check_finite_params(obj, str(path))
    problem = sizes_problem(obj)
    if problem:
        raise ModelFileError(f"{path}: {problem}; the file is damaged or crafted")
    return obj
