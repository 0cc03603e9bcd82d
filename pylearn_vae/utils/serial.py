"""Saving and loading models safely.

``save`` writes atomically: the bytes go to a temporary file in the target's
folder, are flushed and fsynced, and the file is renamed over the target. A
crash or a full disk mid-save leaves the previous file intact.

``load`` reads ``.pkl`` files with an allow-listing unpickler: only this
package's classes, NumPy arrays, dtypes and generators, and the PyTensor
containers that hold parameters may be named by the file, so opening a
model from someone else cannot run arbitrary code.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["save", "load", "atomic_write", "atomic_path", "UnsafePickleError", "ModelFileError"]


H5_SUFFIXES = (".h5", ".hdf5")


class ModelFileError(ValueError):
    """A model file cannot be read or written."""


class UnsafePickleError(ModelFileError, pickle.UnpicklingError):
    """A pickle names something outside the allow-list."""


_ALLOWED = {
    ("builtins", n)
    for n in ("set", "frozenset", "slice", "complex", "range", "bytearray", "object")
} | {
    ("collections", "OrderedDict"),
    ("copyreg", "_reconstructor"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random.mtrand", "RandomState"),
    ("numpy.random._mt19937", "MT19937"),
    ("numpy.random._pcg64", "PCG64"),
    ("numpy.random.bit_generator", "SeedSequence"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    ("pytensor.tensor.sharedvar", "TensorSharedVariable"),
    ("pytensor.tensor.sharedvar", "ScalarSharedVariable"),
    ("pytensor.tensor.type", "TensorType"),
    ("pytensor.link.basic", "Container"),
    ("pytensor.graph.utils", "Scratchpad"),
}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file, path: str) -> None:
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str):
        if module.split(".")[0] in ("pylearn2", "theano"):
            raise UnsafePickleError(
                f"{self._path} was written by Pylearn2/Theano (it names {module}.{name}); "
                "pylearn_vae cannot load such pickles. Retrain with pylearn_vae, or export the "
                "parameters with Pylearn2 as NumPy arrays and set them with model.set_param_values"
            )
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module == "pylearn_vae" or module.startswith("pylearn_vae."):
            obj = super().find_class(module, name)
            if isinstance(obj, type):
                return obj
        raise UnsafePickleError(
            f"{self._path} refers to {module}.{name}, which is not on pylearn_vae's allow-list "
            "of classes a model file may use; refusing to load it (it could run code)"
        )


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    On any error the temporary file is removed and the previous ``path`` is
    left as it was; an ``OSError`` becomes a :class:`ModelFileError` saying
    what happened (a full disk is named as such).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ModelFileError(f"cannot save {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            raise ModelFileError(
                f"could not save {path}: {reason}; the previous file (if any) is unchanged"
            ) from exc
        raise
    _fsync_folder(folder)


def _fsync_folder(folder) -> None:
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def atomic_write(path, write) -> None:
    """Call ``write(file)`` on a temporary binary file, then rename it to ``path``.

    See :func:`atomic_path` for the guarantees.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()


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
    """Save ``obj`` to ``path`` atomically (``.pkl``: pickle).

    ``on_overwrite`` is accepted for Pylearn2 compatibility
    (``'ignore'`` or ``'backup'``; the atomic rename makes a backup
    unnecessary, so both behave the same).
    """
    if on_overwrite not in ("ignore", "backup"):
        raise ValueError(f"on_overwrite must be 'ignore' or 'backup', got {on_overwrite!r}")
    path = Path(path)
    suffix = path.suffix.lower()
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
    """Load an object saved by :func:`save`, refusing unsafe pickles."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in H5_SUFFIXES:
        from pylearn_vae.utils import hdf5

        return hdf5.load_model(path)
    if suffix not in (".pkl", ".pickle"):
        raise ModelFileError(
            f"cannot load {path}: unknown extension {path.suffix!r}; expected .pkl, .h5 or .hdf5"
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"model file {path} does not exist") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return _SafeUnpickler(io.BytesIO(data), str(path)).load()
    except UnsafePickleError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
    ) as exc:
        raise ModelFileError(
            f"{path} is not a valid pylearn_vae model file ({type(exc).__name__}: {exc})"
        ) from exc
