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

:func:`open_file` is the only way in. Before anything is read it refuses a
path that is not a regular file, and a file whose tree holds anything these
writers never write: external or soft links, datasets stored outside the
file (external raw storage) or assembled from other files (virtual
datasets), filters other than HDF5's built-in ones, non-numeric datasets
(object references, strings, compound types), datasets larger than
``MAX_DATASET_BYTES`` (or ``MAX_TOTAL_BYTES`` together), or a tree deeper than ``MAX_DEPTH`` or larger than
``MAX_OBJECTS``. Parameters are then checked against the model's shapes
before their data are read, and must be finite.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from pylearn_vae import __version__
from pylearn_vae.utils.serial import (
    ModelFileError,
    SizeBound,
    atomic_path,
    check_regular_file,
    check_savable,
)

__all__ = [
    "FORMAT_VERSION",
    "save_model",
    "load_model",
    "write_tree",
    "read_tree",
    "open_file",
    "write_model",
    "read_model",
    "check_structure",
    "write_header",
    "restore_monitor",
    "read_text_attribute",
    "load_params",
]

FORMAT_VERSION = 1
# Where the classes named by a file's stored YAML may come from.
_MODEL_CLASSES = ("pylearn_vae.models", "pylearn_vae.space")

MAX_DEPTH = 32
MAX_OBJECTS = 100_000
MAX_DATASET_BYTES = 1 << 30
# Unwritten chunks read as fill values, so declared sizes are bounded in total too.
MAX_TOTAL_BYTES = 4 << 30
MAX_TEXT_CHARS = 1 << 20
MAX_JSON_CHARS = 16 << 20
# Deflate, shuffle, Fletcher-32: built into HDF5 (no plugin is loaded for them).
_BUILTIN_FILTERS = frozenset({1, 2, 3})


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


def read_text_attribute(obj, name: str, where: str, limit: int = MAX_TEXT_CHARS) -> str | None:
    """The string attribute ``name`` of ``obj`` (None if absent), checked for type and size."""
    if name not in obj.attrs:
        return None
    value = obj.attrs[name]
    if not isinstance(value, str):
        raise ModelFileError(
            f"{where}: attribute {name!r} is a {type(value).__name__}, expected a string; "
            "the file is damaged or was not written by pylearn_vae"
        )
    if len(value) > limit:
        raise ModelFileError(
            f"{where}: attribute {name!r} holds {len(value):,} characters, more than the "
            f"{limit:,} allowed"
        )
    return value


def read_tree(group, where: str = "") -> dict:
    """Inverse of :func:`write_tree` (on a file checked by :func:`open_file`)."""
    h5py = _h5py()
    where = where or group.file.filename
    text = read_text_attribute(group, "json", where, MAX_JSON_CHARS)
    try:
        tree = json.loads(text if text is not None else "{}")
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(
            f"{where}: the JSON attribute of {group.name} is damaged ({type(exc).__name__})"
        ) from None
    if not isinstance(tree, dict):
        raise ModelFileError(f"{where}: the JSON attribute of {group.name} is not an object")
    for key, item in group.items():
        tree[key] = read_tree(item, where) if isinstance(item, h5py.Group) else item[()]
    return tree


def _dataset_problem(dset) -> str | None:
    """Why ``dset`` may not be read, or None."""
    if dset.external:
        return "stores its data in another file (external raw storage)"
    if dset.is_virtual:
        return "is a virtual dataset (its data come from other files)"
    plist = dset.id.get_create_plist()
    for i in range(plist.get_nfilters()):
        code = plist.get_filter(i)[0]
        if code not in _BUILTIN_FILTERS:
            return f"uses HDF5 filter {code}, which pylearn_vae never writes"
    dtype = dset.dtype
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        return f"has dtype {dtype}, not a plain numeric type"
    shape = dset.shape
    if shape is None:
        return "has no shape"
    size = math.prod(shape) * dtype.itemsize
    if size > MAX_DATASET_BYTES:
        return f"declares shape {shape} ({size:,} bytes), more than pylearn_vae reads"
    return None


def check_structure(handle, where: str) -> None:
    """Refuse a file whose tree holds anything pylearn_vae never writes (see the module doc)."""
    h5py = _h5py()
    seen = set()
    count = 0
    total = 0
    stack = [(handle, 0)]
    while stack:
        group, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ModelFileError(
                f"{where}: {group.name} is nested more than {MAX_DEPTH} levels deep"
            )
        for name in group:
            count += 1
            if count > MAX_OBJECTS:
                raise ModelFileError(f"{where}: holds more than {MAX_OBJECTS:,} objects")
            path = f"{group.name.rstrip('/')}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise ModelFileError(
                    f"{where}: {path} is a link to {link.filename}:{link.path}; model and "
                    "checkpoint files may not refer to other files"
                )
            if isinstance(link, h5py.SoftLink):
                raise ModelFileError(
                    f"{where}: {path} is a soft link to {link.path}; pylearn_vae never writes links"
                )
            item = group.get(name)
            key = item.id.__hash__() if item is not None else None
            if isinstance(item, h5py.Group):
                if key in seen:
                    raise ModelFileError(f"{where}: {path} links back to a group seen before")
                seen.add(key)
                stack.append((item, depth + 1))
            elif isinstance(item, h5py.Dataset):
                problem = _dataset_problem(item)
                if problem:
                    raise ModelFileError(f"{where}: dataset {path} {problem}; refusing to read it")
                total += math.prod(item.shape) * item.dtype.itemsize
                if total > MAX_TOTAL_BYTES:
                    raise ModelFileError(
                        f"{where}: its datasets declare more than {MAX_TOTAL_BYTES:,} bytes in "
                        "total; refusing to read them"
                    )
            else:
                raise ModelFileError(f"{where}: {path} is not a group or dataset")


def restore_monitor(model, tree: dict, where: str) -> None:
    """Give ``model`` the monitor history ``tree`` (read from a file) through its public state."""
    from pylearn_vae.monitor import Monitor

    try:
        Monitor.get_monitor(model).load_state_dict(tree)
    except ValueError as exc:
        raise ModelFileError(f"{where}: damaged monitor history: {exc}") from None


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
        write_tree(handle.create_group("monitor"), model.monitor.state_dict())


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
        dataset = stored[param.name]
        expected = param.get_value(borrow=True)
        # Shape and type are checked on the declaration, before any data are read.
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
        param.set_value(value.astype(expected.dtype, copy=False))


# Keywords that size a model's parameters.
_SIZE_KEYWORDS = ("nvis", "nhid", "dim")


def _check_sizes(parsed, params, where: str) -> None:
    """Refuse sizes in the stored YAML that the stored parameters do not allow
    (:class:`~pylearn_vae.utils.serial.SizeBound`), before building anything.

    Building the model allocates its parameters, so a ``dim: 1000000000``
    would exhaust memory before the shapes could be compared.
    """
    from pylearn_vae.config import yaml_parse

    bound = SizeBound(item.shape for item in params.values() if hasattr(item, "shape"))
    stack = [parsed]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml_parse.ObjectProxy):
            for key in _SIZE_KEYWORDS:
                value = node.kwargs.get(key)
                if isinstance(value, int) and not bound.allows(value):
                    raise ModelFileError(
                        f"{where}: model_yaml asks for {key}: {value} at "
                        f"{node.key_marks.get(key, node.mark)}, but no parameter stored in the "
                        "file has that size; refusing to build the model"
                    )
            stack.extend(node.kwargs.values())
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def read_model(handle, where: str):
    """Rebuild the model stored in an open HDF5 file (or group)."""
    from pylearn_vae.config import yaml_parse

    text = read_text_attribute(handle, "model_yaml", where)
    if text is None:
        raise ModelFileError(f"{where} holds no model (attribute 'model_yaml' is missing)")
    if "params" not in handle:
        raise ModelFileError(f"{where} has no 'params' group")
    try:
        source = f"{where}:model_yaml"
        parsed = yaml_parse.load(text, restrict_to=_MODEL_CLASSES, source=source, instantiate=False)
        _check_sizes(parsed, handle["params"], where)
        model = yaml_parse.load(text, restrict_to=_MODEL_CLASSES, source=source)
    except yaml_parse.ConfigError as exc:
        raise ModelFileError(f"{where}: cannot rebuild the model: {exc}") from None
    if not callable(getattr(model, "get_params", None)):
        raise ModelFileError(f"{where}: model_yaml describes a {type(model).__name__}, not a model")
    load_params(handle["params"], model, where)
    if "dataset_yaml" in handle.attrs:
        model.dataset_yaml_src = str(handle.attrs["dataset_yaml"])
    if "monitor" in handle:
        restore_monitor(model, read_tree(handle["monitor"], where), where)
    return model


def open_file(path, kind: str):
    """Open an HDF5 file for reading, checking its format and version."""
    h5py = _h5py()
    path = Path(path)
    check_regular_file(path, f"{kind} file")
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
    if not isinstance(version, int | np.integer) or isinstance(version, bool) or version < 1:
        handle.close()
        raise ModelFileError(
            f"{path}: attribute 'format_version' is {version!r}, expected an integer from 1 to "
            f"{FORMAT_VERSION}; the file is damaged"
        )
    if int(version) > FORMAT_VERSION:
        handle.close()
        raise ModelFileError(
            f"{path} uses format version {int(version)}, newer than this pylearn_vae understands "
            f"({FORMAT_VERSION}); upgrade pylearn_vae"
        )
    try:
        check_structure(handle, str(path))
    except BaseException:
        handle.close()
        raise
    return handle


def write_header(handle, kind: str) -> None:
    """Mark ``handle`` as a pylearn_vae ``kind`` ("model" or "checkpoint") of this format."""
    handle.attrs["format"] = kind
    handle.attrs["format_version"] = FORMAT_VERSION
    handle.attrs["pylearn_vae_version"] = __version__


def save_model(path, model) -> None:
    """Write ``model`` to an HDF5 file atomically."""
    h5py = _h5py()
    check_savable(model, path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            write_header(handle, "model")
            write_model(handle, model)


def load_model(path):
    """Read a model written by :func:`save_model` (no pickle, no code from the file)."""
    with open_file(path, "model") as handle:
        try:
            return read_model(handle, str(path))
        except (KeyError, ValueError, TypeError, OSError, RecursionError) as exc:
            if isinstance(exc, ModelFileError):
                raise
            raise ModelFileError(
                f"{path}: damaged model file ({type(exc).__name__}: {exc})"
            ) from None
