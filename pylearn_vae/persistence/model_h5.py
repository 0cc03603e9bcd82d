"""``.h5``/``.hdf5`` model files, read without pickle.

A model file holds:

* ``/params/<name>``: every parameter, as a dataset named after it;
* attribute ``model_yaml``: the YAML that rebuilds the model (see
  :mod:`pylearn_vae.persistence.stored_yaml`), and ``dataset_yaml`` when the
  model was trained on a data set built from YAML;
* ``/monitor``: the monitor history (``Monitor.state_dict()``, one group per
  channel);
* attributes ``format``, ``format_version`` and ``pylearn_vae_version``.

:func:`load_model_h5` is the only door through which such a file becomes a
model (:func:`read_model` is its body, on a file already opened by
:func:`~pylearn_vae.persistence.hdf5_file.reading`); :func:`write_model`,
:func:`read_params` and :func:`restore_monitor` are shared with checkpoints,
which hold the same groups.
"""

from __future__ import annotations

import numpy as np

from pylearn_vae.monitor import Monitor
from pylearn_vae.persistence.checks import all_params, check_savable
from pylearn_vae.persistence.hdf5_file import (
    create_file,
    read_text_attribute,
    read_tree,
    reading,
    write_header,
    write_tree,
)
from pylearn_vae.persistence.stored_yaml import build_model
from pylearn_vae.utils.files import ModelFileError, atomic_path

__all__ = [
    "H5_SUFFIXES",
    "load_model_h5",
    "load_params",
    "read_model",
    "read_params",
    "restore_monitor",
    "save_model_h5",
    "set_params",
    "write_model",
]

H5_SUFFIXES = (".h5", ".hdf5")


def write_model(handle, model) -> None:
    """Write ``model`` (YAML, parameters, monitor history) into an open HDF5 file."""
    if not getattr(model, "yaml_src", None):
        raise ModelFileError(
            f"this {type(model).__name__} has no YAML description (it was built in Python, not "
            "from YAML), so an HDF5 file could not rebuild it; save it as .pkl instead"
        )
    handle.attrs["model_yaml"] = model.yaml_src
    dataset_yaml = getattr(model, "dataset_yaml_src", None)  # None in older pickles
    if dataset_yaml is not None:
        handle.attrs["dataset_yaml"] = dataset_yaml
    params = handle.create_group("params")
    for param in all_params(model):
        params.create_dataset(param.name, data=np.asarray(param.get_value(borrow=True)))
    if model.monitor is not None:
        write_tree(handle.create_group("monitor"), model.monitor.state_dict())


def read_params(stored, params, where: str) -> dict:
    """``{name: array}`` for ``params`` (shared variables) from the HDF5 group ``stored``.

    Each dataset's shape and type are checked against the parameter's before
    its data are read, and the values must be finite. Nothing is set.
    """
    values = {}
    for param in params:
        if param.name not in stored:
            raise ModelFileError(f"{where}: parameter {param.name!r} is missing from the file")
        dataset = stored[param.name]
        expected = param.get_value(borrow=True)
        if not hasattr(dataset, "shape") or dataset.shape != expected.shape:
            raise ModelFileError(
                f"{where}: parameter {param.name!r} has shape {getattr(dataset, 'shape', None)} "
                f"in the file, the model needs {expected.shape}"
            )
        if dataset.dtype.kind != "f":
            raise ModelFileError(
                f"{where}: parameter {param.name!r} has dtype {dataset.dtype}, expected floats"
            )
        value = dataset[()]
        if not np.isfinite(value).all():
            bad = "NaN" if np.isnan(value).any() else "infinite"
            raise ModelFileError(
                f"{where}: parameter {param.name!r} has {bad} values; the file holds a diverged "
                "model; use an earlier file or retrain"
            )
        values[param.name] = value.astype(expected.dtype, copy=False)
    return values


def set_params(params, values: dict) -> None:
    """Give every parameter in ``params`` its value from ``values`` (from :func:`read_params`)."""
    for param in params:
        param.set_value(values[param.name])


def restore_monitor(model, tree: dict, where: str) -> None:
    """Give ``model`` the monitor history ``tree`` (read from a file) through its public state."""
    try:
        Monitor.get_monitor(model).load_state_dict(tree)
    except ValueError as exc:
        raise ModelFileError(f"{where}: damaged monitor history: {exc}") from None


def load_params(stored, model, where: str) -> None:
    """Set every parameter of ``model`` from the HDF5 group ``stored`` (see :func:`read_params`)."""
    params = all_params(model)
    set_params(params, read_params(stored, params, where))


def read_model(handle, where: str):
    """Rebuild the model stored in an HDF5 file opened by ``reading`` (``where`` names it)."""
    text = read_text_attribute(handle, "model_yaml", where)
    if text is None:
        raise ModelFileError(f"{where} holds no model (attribute 'model_yaml' is missing)")
    if "params" not in handle:
        raise ModelFileError(f"{where} has no 'params' group")
    stored = handle["params"]
    shapes = [item.shape for item in stored.values() if hasattr(item, "shape")]
    model = build_model(text, where, shapes)
    load_params(stored, model, where)
    dataset_yaml = read_text_attribute(handle, "dataset_yaml", where)
    if dataset_yaml is not None:
        model.dataset_yaml_src = dataset_yaml
    if "monitor" in handle:
        restore_monitor(model, read_tree(handle["monitor"], where), where)
    return model


def save_model_h5(path, model) -> None:
    """Write ``model`` to an HDF5 file atomically; non-finite parameters are refused."""
    check_savable(model, path)
    with atomic_path(path) as tmp:
        with create_file(tmp) as handle:
            write_header(handle, "model")
            write_model(handle, model)


def load_model_h5(path):
    """Read a model written by :func:`save_model_h5` (no pickle, no code from the file)."""
    with reading(path, "model") as handle:
        return read_model(handle, str(path))
