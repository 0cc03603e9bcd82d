"""Saving and loading model files by extension: ``.pkl`` or ``.h5``/``.hdf5``.

:func:`save` writes atomically and never writes a model whose parameters
are not all finite. :func:`load` hands the path to the one loader of its
kind (:func:`~pylearn_vae.persistence.pickle_file.load_pickle` or
:func:`~pylearn_vae.persistence.model_h5.load_model_h5`): opening a model
from someone else cannot run code from the file or read other files.
"""

from __future__ import annotations

from pathlib import Path

from pylearn_vae.persistence.model_h5 import H5_SUFFIXES, load_model_h5, save_model_h5
from pylearn_vae.persistence.pickle_file import PICKLE_SUFFIXES, load_pickle, save_pickle
from pylearn_vae.utils.files import ModelFileError

__all__ = ["save", "load", "check_model_path"]


def check_model_path(path, what: str) -> None:
    """Refuse, before any training, a model ``path`` that :func:`save` would
    refuse at its first save: not text, empty, a NUL character, or an
    extension other than ``.pkl``, ``.h5`` or ``.hdf5``. ``what`` names it
    (``MonitorBasedSaveBest: save_path``)."""
    from pylearn_vae.text import escape
    from pylearn_vae.utils.files import check_path_name

    if not isinstance(path, (str, Path)):
        raise ModelFileError(f"{what} must be a file name, got {type(path).__name__}")
    if not str(path):
        raise ModelFileError(f"{what} is empty; give a file name ending in .h5 or .pkl")
    check_path_name(path, what)
    suffix = Path(path).suffix.lower()
    if suffix not in PICKLE_SUFFIXES + H5_SUFFIXES:
        raise ModelFileError(
            f"{what} '{escape(str(path))}' has the extension {escape(suffix or 'none')}; "
            "a model file ends in .h5, .hdf5, .pkl or .pickle"
        )


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
    if suffix in PICKLE_SUFFIXES:
        save_pickle(path, obj)
    elif suffix in H5_SUFFIXES:
        save_model_h5(path, obj)
    else:
        raise ModelFileError(
            f"cannot save {path}: unknown extension {path.suffix!r}; use .h5, .hdf5 or .pkl"
        )


def load(path):
    """Load an object saved by :func:`save`, refusing unsafe files.

    Raises :class:`~pylearn_vae.persistence.safe_pickle.UnsafePickleError`
    when a pickle names anything outside the allow-list or uses a refused
    opcode, and :class:`ModelFileError` when the file is not a regular file,
    is damaged or crafted, or holds a model whose parameters are not finite.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in H5_SUFFIXES:
        return load_model_h5(path)
    if suffix in PICKLE_SUFFIXES:
        return load_pickle(path)
    raise ModelFileError(
        f"cannot load {path}: unknown extension {path.suffix!r}; expected .h5, .hdf5 or .pkl"
    )
