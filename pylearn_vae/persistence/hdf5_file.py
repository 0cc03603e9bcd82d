"""The HDF5 container shared by ``.h5`` model files and checkpoints: the gate every one passes.

:func:`open_file` is the only way an HDF5 file is opened for reading. Before
any value is read it refuses a path that is not a regular file, and a file
whose tree holds anything pylearn_vae never writes:

* external or soft links, datasets stored outside the file (external raw
  storage) or assembled from other files (virtual datasets), filters other
  than HDF5's built-in ones;
* non-numeric datasets (object references, strings, compound types), a
  dataset declaring more than ``MAX_DATASET_BYTES`` (or all of them more than
  ``MAX_TOTAL_BYTES``, each hard link counted), a dataset that stores fewer
  bytes than its shape declares (unwritten chunks, which read as fill values,
  or compressed ones, which expand: reading either costs memory the file does
  not hold), a tree deeper than ``MAX_DEPTH`` or larger than ``MAX_OBJECTS``;
* attributes other than single strings and numbers, more than
  ``MAX_ATTRIBUTES`` on one object, one declaring more than
  ``MAX_ATTRIBUTE_BYTES`` or all of them more than ``MAX_TOTAL_ATTRIBUTE_BYTES``.

A variable-length string attribute (how h5py stores ``str``) keeps its
length in the object header; HDF5 allocates (and clears) that many bytes
before noticing that the string is shorter, so a forged length of 4 GiB costs
4 GiB of memory. :mod:`pylearn_vae.persistence.hdf5_headers` reads the
declared lengths from the header first, and :func:`open_file` refuses the
file if one is too large. Text read afterwards is checked again once
decoded (``MAX_TEXT_CHARS`` for YAML, ``MAX_JSON_CHARS`` for JSON).

Trees are written with :func:`write_tree`: nested dicts become groups, NumPy
arrays datasets, and scalars, strings and None one JSON attribute per group.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
from h5py import h5a, h5s, h5t

from pylearn_vae import __version__
from pylearn_vae.persistence.hdf5_headers import HeaderReader
from pylearn_vae.utils.files import ModelFileError, check_regular_file

__all__ = [
    "FORMAT_VERSION",
    "MAX_ATTRIBUTES",
    "MAX_ATTRIBUTE_BYTES",
    "MAX_DATASET_BYTES",
    "MAX_DEPTH",
    "MAX_JSON_CHARS",
    "MAX_OBJECTS",
    "MAX_TEXT_CHARS",
    "MAX_TOTAL_ATTRIBUTE_BYTES",
    "MAX_TOTAL_BYTES",
    "check_structure",
    "create_file",
    "open_file",
    "reading",
    "read_text_attribute",
    "read_tree",
    "write_header",
    "write_tree",
]

FORMAT_VERSION = 1

MAX_DEPTH = 32
MAX_OBJECTS = 100_000
MAX_DATASET_BYTES = 1 << 30
# Unwritten chunks read as fill values, so declared sizes are bounded in total too.
MAX_TOTAL_BYTES = 4 << 30
# pylearn_vae writes at most six attributes on one object (the root of a checkpoint).
MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_BYTES = 16 << 20
MAX_TOTAL_ATTRIBUTE_BYTES = 64 << 20
MAX_TEXT_CHARS = 1 << 20
MAX_JSON_CHARS = 16 << 20
# A chunk may be larger than its dataset's data up to this (h5py's own chunks are).
_SMALL_CHUNK = 1 << 20
# Deflate, shuffle, Fletcher-32: built into HDF5 (no plugin is loaded for them).
_BUILTIN_FILTERS = frozenset({1, 2, 3})


# -- writing ------------------------------------------------------------------------


def create_file(path) -> h5py.File:
    """Open ``path`` for writing, in the layout :mod:`hdf5_headers` reads (version 1 headers)."""
    return h5py.File(path, "w", libver="earliest")


def write_header(handle, kind: str) -> None:
    """Mark ``handle`` as a pylearn_vae ``kind`` ("model" or "checkpoint") of this format."""
    handle.attrs["format"] = kind
    handle.attrs["format_version"] = FORMAT_VERSION
    handle.attrs["pylearn_vae_version"] = __version__


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


# -- reading (on a file opened by open_file) ----------------------------------------


def read_text_attribute(obj, name: str, where: str, limit: int = MAX_TEXT_CHARS) -> str | None:
    """The string attribute ``name`` of ``obj`` (None if absent), checked for type and size.

    Its declared size was bounded by :func:`open_file` before this reads it.
    """
    if name not in obj.attrs:
        return None
    try:
        value = obj.attrs[name]
    except OSError as exc:  # HDF5 found the stored text damaged
        raise ModelFileError(f"{where}: damaged HDF5 attribute {name!r} (OSError: {exc})") from None
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


# -- the gate -----------------------------------------------------------------------


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
    if dset.chunks is not None:
        chunk = math.prod(dset.chunks) * dtype.itemsize
        if chunk > max(size, _SMALL_CHUNK):
            # HDF5 reads (and decompresses) whole chunks.
            return (
                f"stores its {size:,} bytes in chunks of {chunk:,} bytes; reading one would "
                "cost that much memory"
            )
    stored = dset.id.get_storage_size()
    if stored < size:
        # Unwritten chunks read as fill values and compressed ones expand: memory
        # would follow the declared shape, not the file. pylearn_vae writes every
        # dataset whole and uncompressed.
        return (
            f"declares {size:,} bytes but stores {stored:,} (unwritten or compressed data, "
            "which pylearn_vae never writes)"
        )
    return None


class _AttributeBudget:
    """Checks the attributes of every object against the limits, without reading a value."""

    def __init__(self, headers: HeaderReader, where: str) -> None:
        self.headers = headers
        self.where = where
        self.total = 0

    def check(self, obj, path: str) -> None:
        count = h5a.get_num_attrs(obj.id)
        if count > MAX_ATTRIBUTES:
            raise ModelFileError(
                f"{self.where}: {path} has {count:,} attributes, more than the "
                f"{MAX_ATTRIBUTES} pylearn_vae reads"
            )
        declared = None
        for index in range(count):
            attr = h5a.open(obj.id, index=index)
            name = attr.name.decode("utf-8", "replace")
            label = f"attribute {name!r} of {path}"
            kind = attr.get_type()
            kind_class = kind.get_class()
            if kind_class == h5t.STRING and kind.is_variable_str():
                if attr.get_space().get_simple_extent_type() != h5s.SCALAR:
                    raise ModelFileError(
                        f"{self.where}: {label} is an array of strings; pylearn_vae writes one "
                        "string per attribute"
                    )
                if declared is None:
                    declared = self.headers.string_lengths(obj, path)
                if name not in declared:
                    raise ModelFileError(
                        f"{self.where}: {label} is stored in a layout pylearn_vae never writes "
                        "(its length cannot be checked before reading it); refusing to read it"
                    )
                size = declared[name]
            elif kind_class in (h5t.STRING, h5t.INTEGER, h5t.FLOAT):
                size = attr.get_storage_size()
            else:
                raise ModelFileError(
                    f"{self.where}: {label} is not a string or a number (HDF5 type class "
                    f"{kind_class}); pylearn_vae never writes such attributes"
                )
            if size > MAX_ATTRIBUTE_BYTES:
                raise ModelFileError(
                    f"{self.where}: {label} declares {size:,} bytes, more than the "
                    f"{MAX_ATTRIBUTE_BYTES:,} pylearn_vae reads; refusing to read it"
                )
            self.total += size
            if self.total > MAX_TOTAL_ATTRIBUTE_BYTES:
                raise ModelFileError(
                    f"{self.where}: its attributes declare more than "
                    f"{MAX_TOTAL_ATTRIBUTE_BYTES:,} bytes in total; refusing to read them"
                )


def _check_link(group, name: str, path: str, where: str) -> None:
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


def check_structure(handle, where: str) -> None:
    """Refuse a file whose tree holds anything pylearn_vae never writes (see the module doc)."""
    with HeaderReader(handle, where) as headers:
        attributes = _AttributeBudget(headers, where)
        attributes.check(handle, "/")
        _check_tree(handle, where, attributes)


def _check_tree(handle, where: str, attributes: _AttributeBudget) -> None:
    """Links, datasets and attributes below the root (whose attributes were checked)."""
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
            _check_link(group, name, path, where)
            item = group.get(name)
            key = item.id.__hash__() if item is not None else None
            if isinstance(item, h5py.Group):
                if key in seen:
                    raise ModelFileError(f"{where}: {path} links back to a group seen before")
                seen.add(key)
                attributes.check(item, path)
                stack.append((item, depth + 1))
            elif isinstance(item, h5py.Dataset):
                problem = _dataset_problem(item)
                if problem:
                    raise ModelFileError(f"{where}: dataset {path} {problem}; refusing to read it")
                attributes.check(item, path)
                total += math.prod(item.shape) * item.dtype.itemsize
                if total > MAX_TOTAL_BYTES:
                    raise ModelFileError(
                        f"{where}: its datasets declare more than {MAX_TOTAL_BYTES:,} bytes in "
                        "total; refusing to read them"
                    )
            else:
                raise ModelFileError(f"{where}: {path} is not a group or dataset")


def _check_header(handle, path: Path, kind: str) -> None:
    """The ``format`` and ``format_version`` attributes say this is a ``kind`` we can read."""
    found = read_text_attribute(handle, "format", str(path), limit=64)
    version = handle.attrs.get("format_version")
    if found is None or version is None:
        raise ModelFileError(
            f"{path} is an HDF5 file but not a pylearn_vae {kind} (no 'format' attribute)"
        )
    if found != kind:
        raise ModelFileError(f"{path} is a pylearn_vae {found}, not a {kind}")
    if not isinstance(version, int | np.integer) or isinstance(version, bool) or version < 1:
        raise ModelFileError(
            f"{path}: attribute 'format_version' is {version!r}, expected an integer from 1 to "
            f"{FORMAT_VERSION}; the file is damaged"
        )
    if int(version) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} uses format version {int(version)}, newer than this pylearn_vae understands "
            f"({FORMAT_VERSION}); upgrade pylearn_vae"
        )


def open_file(path, kind: str) -> h5py.File:
    """Open the pylearn_vae ``kind`` ("model" or "checkpoint") at ``path`` for reading.

    Every check of the module doc has passed when this returns; the caller
    closes the file (use it in a ``with`` block).
    """
    path = Path(path)
    check_regular_file(path, f"{kind} file")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ModelFileError(
            f"{path} is not a readable HDF5 file ({exc}); it may be truncated or corrupt"
        ) from None
    try:
        with HeaderReader(handle, str(path)) as headers:
            attributes = _AttributeBudget(headers, str(path))
            attributes.check(handle, "/")
            _check_header(handle, path, kind)
            _check_tree(handle, str(path), attributes)
    except BaseException as exc:
        handle.close()
        # (h5py raises RuntimeError for some damaged objects, e.g. a zero-size attribute)
        if isinstance(
            exc, OSError | KeyError | ValueError | TypeError | RuntimeError | AttributeError
        ) and not isinstance(exc, ModelFileError):
            raise ModelFileError(
                f"{path}: damaged HDF5 file ({type(exc).__name__}: {exc})"
            ) from None
        raise
    return handle


@contextlib.contextmanager
def reading(path, kind: str) -> Iterator[h5py.File]:
    """:func:`open_file` for a ``with`` block in which any error reading the file
    (HDF5's ``OSError``, a missing key, a value of the wrong type) becomes a
    :class:`ModelFileError` naming the file."""
    with open_file(path, kind) as handle:
        try:
            yield handle
        except (
            KeyError,
            ValueError,
            TypeError,
            OSError,
            RecursionError,
            RuntimeError,  # (h5py, on some damaged objects)
            AttributeError,  # (a dataset where a group belongs: /params, /monitor, /state)
        ) as exc:
            if isinstance(exc, ModelFileError):
                raise
            raise ModelFileError(
                f"{path}: damaged {kind} file ({type(exc).__name__}: {exc})"
            ) from None
