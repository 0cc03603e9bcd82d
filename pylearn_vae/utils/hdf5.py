"""HDF5 model files and checkpoints (``.h5`` / ``.hdf5``), read without pickle.

A model file holds:

* ``/params/<name>``: every parameter, as a dataset named after it;
* attribute ``model_yaml``: the YAML that rebuilds the model (only
  pylearn_vae model classes may appear in it when loading);
* ``/monitor``: the monitor history (one group per channel);
* attributes ``format``, ``format_version`` and ``pylearn_vae_version``.

Checkpoints add ``/state``: a tree of the training state (see
:mod:`pylearn_vae.checkpoint`). Trees are written with :func:`write_tree`:
nested dicts become groups, NumPy arrays datasets, and scalars, strings and
None a JSON attribute.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pylearn_vae import __version__
from pylearn_vae.utils.serial import ModelFileError, atomic_path

__all__ = [
    "FORMAT_VERSION",
    "save_model",
    "load_model",
    "write_tree",
    "read_tree",
    "open_file",
    "write_model",
    "read_model",
]

FORMAT_VERSION = 1
_MODEL_CLASSES = ("pylearn_vae.models.", "pylearn_vae.space")


def _h5py():
    import h5py

    return h5py


def write_tree(group, tree: dict) -> None:
    """Write a nested dict: dicts -> groups, arrays -> datasets, the rest -> JSON."""
    scalars = {}
    for key, value in tree.items():
        key = str(key)
        if isinstance(value, dict):
            write_tree(group.create_group(key), value)
        elif isinstance(value, np.ndarray):
            group.create_dataset(key, data=value)
        elif hasattr(value, "__array__") and not isinstance(value, np.generic):
            # Arrays of other libraries (a JAX-compiled step's shared values).
            group.create_dataset(key, data=np.asarray(value))
        elif isinstance(value, np.generic):
            scalars[key] = value.item()
        else:
            scalars[key] = value
    group.attrs["json"] = json.dumps(scalars)


def read_tree(group) -> dict:
    """Inverse of :func:`write_tree`."""
    h5py = _h5py()
    tree = json.loads(group.attrs.get("json", "{}"))
    for key, item in group.items():
        tree[key] = read_tree(item) if isinstance(item, h5py.Group) else item[()]
    return tree


def _monitor_tree(monitor) -> dict:
    channels = {}
    for name, channel in monitor.channels.items():
        values = channel.val_record
        is_int = all(isinstance(v, int | np.integer) for v in values)
        channels[name] = {
            "val_record": np.asarray(values, dtype=np.int64 if is_int else np.float64),
            "epoch_record": np.asarray(channel.epoch_record, dtype=np.int64),
            "batch_record": np.asarray(channel.batch_record, dtype=np.int64),
            "example_record": np.asarray(channel.example_record, dtype=np.int64),
            "time_record": np.asarray(channel.time_record, dtype=np.float64),
        }
    return {
        "epochs_seen": monitor._epochs_seen,
        "batches_seen": monitor._batches_seen,
        "examples_seen": monitor._examples_seen,
        "last_epoch_seconds": monitor._last_epoch_seconds,
        "channel_order": list(monitor.channels),
        "channels": channels,
    }


def _restore_monitor(model, tree: dict) -> None:
    from pylearn_vae.monitor import Monitor, MonitorChannel

    monitor = Monitor.get_monitor(model)
    monitor._epochs_seen = int(tree["epochs_seen"])
    monitor._batches_seen = int(tree["batches_seen"])
    monitor._examples_seen = int(tree["examples_seen"])
    monitor._last_epoch_seconds = float(tree["last_epoch_seconds"])
    for name in tree["channel_order"]:
        data = tree["channels"][name]
        channel = monitor.channels.setdefault(name, MonitorChannel(name))
        values = data["val_record"]
        channel.val_record = (
            [int(v) for v in values] if values.dtype.kind == "i" else [float(v) for v in values]
        )
        channel.epoch_record = [int(v) for v in data["epoch_record"]]
        channel.batch_record = [int(v) for v in data["batch_record"]]
        channel.example_record = [int(v) for v in data["example_record"]]
        channel.time_record = [float(v) for v in data["time_record"]]


def write_model(handle, model) -> None:
    """Write ``model`` into an open HDF5 file (or group)."""
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
    for param in model.get_params() + [
        p for p in _extra_params(model) if p not in model.get_params()
    ]:
        params.create_dataset(param.name, data=np.asarray(param.get_value(borrow=True)))
    if model.monitor is not None:
        write_tree(handle.create_group("monitor"), _monitor_tree(model.monitor))


def _extra_params(model) -> list:
    """Parameters that are not trained but belong to the model (e.g. a fixed prior)."""
    getter = getattr(model, "get_prior_params", None)
    return list(getter()) if getter else []


def load_params(stored, model, where: str) -> None:
    """Set every parameter of ``model`` (trained or not) from the HDF5 group ``stored``."""
    params = model.get_params()
    for param in params + [p for p in _extra_params(model) if p not in params]:
        if param.name not in stored:
            raise ModelFileError(f"{where}: parameter {param.name!r} is missing from the file")
        value = stored[param.name][()]
        expected = param.get_value(borrow=True)
        if value.shape != expected.shape:
            raise ModelFileError(
                f"{where}: parameter {param.name!r} has shape {value.shape} in the file, "
                f"the model needs {expected.shape}"
            )
        param.set_value(value.astype(expected.dtype, copy=False))


def read_model(handle, where: str):
    """Rebuild the model stored in an open HDF5 file (or group)."""
    from pylearn_vae.config import yaml_parse

    if "model_yaml" not in handle.attrs:
        raise ModelFileError(f"{where} holds no model (attribute 'model_yaml' is missing)")
    try:
        model = yaml_parse.load(
            str(handle.attrs["model_yaml"]),
            restrict_to=_MODEL_CLASSES,
            source=f"{where}:model_yaml",
        )
    except yaml_parse.ConfigError as exc:
        raise ModelFileError(f"{where}: cannot rebuild the model: {exc}") from None
    if "params" not in handle:
        raise ModelFileError(f"{where} has no 'params' group")
    load_params(handle["params"], model, where)
    if "dataset_yaml" in handle.attrs:
        model.dataset_yaml_src = str(handle.attrs["dataset_yaml"])
    if "monitor" in handle:
        _restore_monitor(model, read_tree(handle["monitor"]))
    return model


def open_file(path, kind: str):
    """Open an HDF5 file for reading, checking its format and version."""
    h5py = _h5py()
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path} does not exist")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ModelFileError(
            f"{path} is not a readable HDF5 file ({exc}); it may be truncated or corrupt"
        ) from None
    found = handle.attrs.get("format")
    version = handle.attrs.get("format_version")
    if found is None or version is None:
        handle.close()
        raise ModelFileError(
            f"{path} is an HDF5 file but not a pylearn_vae {kind} (no 'format' attribute)"
        )
    if str(found) != kind:
        handle.close()
        raise ModelFileError(f"{path} is a pylearn_vae {found}, not a {kind}")
    if int(version) > FORMAT_VERSION:
        handle.close()
        raise ModelFileError(
            f"{path} uses format version {int(version)}, newer than this pylearn_vae understands "
            f"({FORMAT_VERSION}); upgrade pylearn_vae"
        )
    return handle


def _write_header(handle, kind: str) -> None:
    handle.attrs["format"] = kind
    handle.attrs["format_version"] = FORMAT_VERSION
    handle.attrs["pylearn_vae_version"] = __version__


def save_model(path, model) -> None:
    """Write ``model`` to an HDF5 file atomically."""
    h5py = _h5py()
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            _write_header(handle, "model")
            write_model(handle, model)


def load_model(path):
    """Read a model written by :func:`save_model` (no pickle, no code from the file)."""
    with open_file(path, "model") as handle:
        try:
            return read_model(handle, str(path))
        except (KeyError, ValueError, TypeError, OSError) as exc:
            if isinstance(exc, ModelFileError):
                raise
            raise ModelFileError(
                f"{path}: damaged model file ({type(exc).__name__}: {exc})"
            ) from None
