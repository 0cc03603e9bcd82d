"""``.pkl`` model files: written with pickle, read only through the restricted unpickler.

:func:`load_pickle` is the only door through which the bytes of a ``.pkl``
file become objects (see :mod:`pylearn_vae.persistence.safe_pickle` for
what a pickle may contain).
"""

from __future__ import annotations

import io
import pickle
import sys
from pathlib import Path

import numpy as np

from pylearn_vae.persistence.checks import check_finite_params, check_savable, sizes_problem
from pylearn_vae.persistence.safe_pickle import loads
from pylearn_vae.utils.files import ModelFileError, atomic_write, check_regular_file

__all__ = ["PICKLE_SUFFIXES", "save_pickle", "load_pickle"]

PICKLE_SUFFIXES = (".pkl", ".pickle")


class _NumpyPickler(pickle.Pickler):
    """Pickles JAX arrays as the NumPy arrays they hold.

    Shared variables updated by a JAX-compiled function hold JAX arrays; a
    model file must not need JAX (or a GPU) to be loaded.
    """

    def reducer_override(self, obj):
        jax = sys.modules.get("jax")
        if jax is not None and isinstance(obj, jax.Array):
            return np.asarray(obj).__reduce_ex__(pickle.HIGHEST_PROTOCOL)
        return NotImplemented


def save_pickle(path, obj) -> None:
    """Pickle ``obj`` to ``path`` atomically; a model with non-finite parameters is refused."""
    check_savable(obj, path)
    buffer = io.BytesIO()
    _NumpyPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    data = buffer.getvalue()
    atomic_write(path, lambda handle: handle.write(data))


def load_pickle(path):
    """Read a ``.pkl`` model file with the restricted unpickler, then check the model."""
    path = Path(path)
    check_regular_file(path, "model file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror}") from exc
    obj = loads(data, str(path))
    if isinstance(obj, type):
        raise ModelFileError(f"{path} holds the class {obj.__name__}, not a model")
    try:
        check_finite_params(obj, str(path))
        problem = sizes_problem(obj)
    except ModelFileError:
        raise
    except Exception as exc:  # (the objects' state came from the file: any part may be missing)
        raise ModelFileError(
            f"{path} is not a valid pylearn_vae model file ({type(exc).__name__}: {exc})"
        ) from None
    if problem:
        raise ModelFileError(f"{path}: {problem}; the file is damaged or crafted")
    return obj
