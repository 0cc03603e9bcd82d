"""Saving and loading models safely.

``save`` writes atomically: the bytes go to a temporary file in the target's
folder, are flushed and fsynced, and the file is renamed over the target. A
crash or a full disk mid-save leaves the previous file intact.

``load`` reads ``.pkl`` files with a restricted unpickler (see
:class:`_SafeUnpickler`): a file may only name, by exact module and name,
the classes a model is made of and a few NumPy helpers (wrapped so that they
check their arguments); opcodes that call or extend arbitrary objects are
refused. Opening a model from someone else cannot run code from the file or
read other files.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import importlib
import io
import math
import os
import pickle
import pickletools
import stat
import sys
import tempfile
from pathlib import Path
from struct import error as struct_error

import numpy as np

__all__ = [
    "save",
    "load",
    "atomic_write",
    "atomic_path",
    "check_regular_file",
    "check_finite_params",
    "check_savable",
    "params_problem",
    "UnsafePickleError",
    "ModelFileError",
]


H5_SUFFIXES = (".h5", ".hdf5")


class ModelFileError(ValueError):
    """A model file cannot be read or written."""


class UnsafePickleError(ModelFileError, pickle.UnpicklingError):
    """A pickle names something outside the allow-list, or uses a refused opcode."""


class _Refused(Exception):
    """Raised inside the unpickler; :func:`load` adds the file name."""


def check_regular_file(path, what: str = "file") -> None:
    """Raise :class:`ModelFileError` unless ``path`` is an existing regular file.

    FIFOs, devices and sockets are refused before anything opens them: reading
    one can block for ever (a FIFO) or never end (``/dev/zero``).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ModelFileError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read {what} {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = (
            "a directory"
            if stat.S_ISDIR(mode)
            else "a FIFO (named pipe)"
            if stat.S_ISFIFO(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "not a regular file"
        )
        raise ModelFileError(f"{what} {path} is {kind}; give the path of a regular file")


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


# --- the restricted unpickler --------------------------------------------------

_FLOAT_KINDS = "biufc"
_BIT_GENERATORS = {"MT19937": np.random.MT19937, "PCG64": np.random.PCG64}


def _numpy_core(submodule: str):
    """NumPy's own module (``numpy._core`` since 2.0, ``numpy.core`` before)."""
    try:
        return importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:  # NumPy 1.x
        return importlib.import_module(f"numpy.core.{submodule}")


def _check_dtype(dtype) -> np.dtype:
    if (
        not isinstance(dtype, np.dtype)
        or dtype.kind not in _FLOAT_KINDS
        or dtype.fields is not None
        or dtype.subdtype is not None
        or dtype.hasobject
    ):
        raise _Refused(f"dtype {dtype!r} is not a plain numeric type")
    return dtype


def _check_shape(shape) -> int:
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise _Refused(f"array shape {shape!r} is not a tuple of non-negative integers")
    return math.prod(shape)


def _safe_dtype(spec, align=False, copy=False) -> np.dtype:
    if not isinstance(spec, str) or len(spec) > 8:
        raise _Refused(f"dtype {spec!r} is not a plain numeric type name")
    return _check_dtype(np.dtype(spec, bool(align), bool(copy)))


def _safe_frombuffer(buffer, dtype, shape, order):
    if type(buffer) not in (bytes, bytearray):
        raise _Refused(f"array data is a {type(buffer).__name__}, expected bytes")
    _check_dtype(dtype)
    count = _check_shape(shape)
    if count * dtype.itemsize != len(buffer):
        raise _Refused(
            f"array of shape {shape} and dtype {dtype} needs {count * dtype.itemsize} bytes, "
            f"the file gives {len(buffer)}"
        )
    if order not in ("C", "F"):
        raise _Refused(f"array order {order!r} is not 'C' or 'F'")
    return _numpy_core("numeric")._frombuffer(buffer, dtype, shape, order)


def _safe_scalar(dtype, data=None):
    _check_dtype(dtype)
    if type(data) is not bytes or len(data) != dtype.itemsize:
        raise _Refused(f"a {dtype} scalar needs {dtype.itemsize} bytes")
    return _numpy_core("multiarray").scalar(dtype, data)


def _bit_generator(name):
    if isinstance(name, tuple(_BIT_GENERATORS.values())):
        return name
    if type(name) is str and name in _BIT_GENERATORS:
        return _BIT_GENERATORS[name]()
    if isinstance(name, type) and name in _BIT_GENERATORS.values():
        return name()
    raise _Refused(f"bit generator {name!r} is not one of {', '.join(_BIT_GENERATORS)}")


def _safe_bit_generator_ctor(bit_generator="MT19937"):
    generator = _bit_generator(bit_generator)
    if generator is bit_generator:
        raise _Refused("a bit generator constructor was given an instance")
    return generator


def _check_ctor(ctor) -> None:
    if ctor is not None and ctor is not _safe_bit_generator_ctor:
        raise _Refused(f"bit generator constructor {ctor!r} is not NumPy's")


def _safe_randomstate_ctor(bit_generator_name="MT19937", bit_generator_ctor=None):
    _check_ctor(bit_generator_ctor)
    return np.random.RandomState(_bit_generator(bit_generator_name))


def _safe_generator_ctor(bit_generator_name="MT19937", bit_generator_ctor=None):
    _check_ctor(bit_generator_ctor)
    return np.random.Generator(_bit_generator(bit_generator_name))


def _safe_unpickle_seed_sequence(cls, checksum, state):
    if cls is not np.random.SeedSequence:
        raise _Refused(f"{cls!r} is not numpy.random.SeedSequence")
    real = importlib.import_module("numpy.random.bit_generator").__pyx_unpickle_SeedSequence
    return real(cls, checksum, state)


# Functions a pickle may name, and call with REDUCE: exact (module, name) ->
# the checking wrapper that is called instead of the real function.
_FUNCTIONS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("numpy", "dtype"): _safe_dtype,
    ("numpy._core.numeric", "_frombuffer"): _safe_frombuffer,
    ("numpy.core.numeric", "_frombuffer"): _safe_frombuffer,
    ("numpy._core.multiarray", "scalar"): _safe_scalar,
    ("numpy.core.multiarray", "scalar"): _safe_scalar,
    ("numpy.random._pickle", "__bit_generator_ctor"): _safe_bit_generator_ctor,
    ("numpy.random._pickle", "__randomstate_ctor"): _safe_randomstate_ctor,
    ("numpy.random._pickle", "__generator_ctor"): _safe_generator_ctor,
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"): _safe_unpickle_seed_sequence,
}

# Classes a pickle may name as arguments (not call): exact (module, name) -> class.
_NUMPY_CLASSES = {
    ("numpy.random._mt19937", "MT19937"): np.random.MT19937,
    ("numpy.random._pcg64", "PCG64"): np.random.PCG64,
    ("numpy.random.bit_generator", "SeedSequence"): np.random.SeedSequence,
}

# Classes a pickle may create with NEWOBJ (no arguments) and fill with BUILD,
# named by the module that defines them; checked against the real definition.
_MODEL_CLASSES = {
    ("pytensor.tensor.sharedvar", "TensorSharedVariable"),
    ("pytensor.tensor.type", "TensorType"),
    ("pytensor.link.basic", "Container"),
    ("pytensor.graph.utils", "Scratchpad"),
    ("pylearn_vae.monitor", "Monitor"),
    ("pylearn_vae.monitor", "MonitorChannel"),
    ("pylearn_vae.utils.rng", "SymbolicRNG"),
}
# Every class defined in these modules (models, layers, priors, conditionals,
# KL integrators, spaces) may be named too.
_MODEL_MODULES = ("pylearn_vae.models", "pylearn_vae.space")

# Objects that BUILD may set the state of, besides the model classes.
_BUILDABLE = (
    np.dtype,
    np.random.RandomState,
    np.random.Generator,
    np.random.MT19937,
    np.random.PCG64,
    np.random.SeedSequence,
)

# Opcodes that call or reach objects outside the allow-list without find_class
# (INST/OBJ call a class with arguments, EXT* use the copyreg registry,
# PERSID asks for persistent objects, buffers come from outside the file).
_REFUSED_OPCODES = {
    "INST",
    "OBJ",
    "EXT1",
    "EXT2",
    "EXT4",
    "PERSID",
    "BINPERSID",
    "NEXT_BUFFER",
    "READONLY_BUFFER",
}


def _is_model_module(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in _MODEL_MODULES)


def _resolve_class(module: str, name: str):
    """The class ``name`` defined in ``module`` itself, or None."""
    # "pkg.__init__" or "__main__" would run a module's code a second time under another name.
    if not all(part.isidentifier() and not part.startswith("__") for part in module.split(".")):
        return None
    try:
        namespace = vars(importlib.import_module(module))
    except ImportError:
        return None
    obj = namespace.get(name)
    if isinstance(obj, type) and obj.__module__ == module and obj.__qualname__ == name:
        return obj
    return None


def _prescan(data: bytes) -> None:
    """Check every opcode (and every counted length) before anything is built.

    ``pickletools.genops`` reads the arguments without allocating for them,
    so a length larger than the file (a "6 GiB bytearray") is found here
    instead of being allocated by the unpickler.
    """
    try:
        for opcode, _arg, position in pickletools.genops(data):
            if opcode.name in _REFUSED_OPCODES:
                raise _Refused(f"opcode {opcode.name} at byte {position} is not allowed")
    except _Refused:
        raise
    except Exception as exc:
        raise pickle.UnpicklingError(f"malformed pickle: {exc}") from None


class _SafeUnpickler(pickle._Unpickler):
    """Python's own unpickler with its opcode table narrowed.

    ``find_class`` resolves exact ``(module, name)`` pairs only (never a
    dotted attribute path) to the objects of the tables above. REDUCE may
    only call the functions of ``_FUNCTIONS``; NEWOBJ only creates model
    classes, without arguments; BUILD only fills instances of those classes;
    APPEND and SETITEM only touch lists and dicts. The pure-Python
    unpickler is used because its opcode table can be narrowed this way.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, path: str) -> None:
        super().__init__(file)
        self._path = path
        self._classes: set = set()

    def find_class(self, module: str, name: str):
        if type(module) is not str or type(name) is not str:
            raise _Refused("a global name is not a string")
        if module.split(".")[0] in ("pylearn2", "theano"):
            raise UnsafePickleError(
                f"{self._path} was written by Pylearn2/Theano (it names {module}.{name}); "
                "pylearn_vae cannot load such pickles. Retrain with pylearn_vae, or export the "
                "parameters with Pylearn2 as NumPy arrays and set them with model.set_param_values"
            )
        key = (module, name)
        if key in _FUNCTIONS:
            return _FUNCTIONS[key]
        if key in _NUMPY_CLASSES:
            return _NUMPY_CLASSES[key]
        if "." not in name and (key in _MODEL_CLASSES or _is_model_module(module)):
            cls = _resolve_class(module, name)
            if cls is not None:
                self._classes.add(cls)
                return cls
        raise _Refused(
            f"refers to {module}.{name}, which is not on pylearn_vae's allow-list "
            "of classes a model file may use"
        )

    def _load_reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        if not any(func is allowed for allowed in _FUNCTIONS.values()):
            raise _Refused(
                f"calls {getattr(func, '__qualname__', type(func).__name__)}, "
                "which a model file may not call"
            )
        if type(args) is not tuple:
            raise _Refused("REDUCE arguments are not a tuple")
        self.stack[-1] = func(*args)

    def _load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args, {}))

    def _load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args, kwargs))

    def _new(self, cls, args, kwargs):
        if cls not in self._classes:
            raise _Refused(f"creates {cls!r}, which a model file may not create")
        if args != () or kwargs != {}:
            raise _Refused(f"creates {cls.__qualname__} with constructor arguments")
        return cls.__new__(cls)

    def _load_build(self):
        inst = self.stack[-2]
        if not (type(inst) in self._classes or isinstance(inst, _BUILDABLE)):
            raise _Refused(f"sets the state of a {type(inst).__name__}, which is not allowed")
        pickle._Unpickler.load_build(self)

    def _container(self, kinds, opcode):
        target = self.stack[-1]
        if type(target) not in kinds:
            raise _Refused(f"{opcode} on a {type(target).__name__}")

    def _load_append(self):
        value = self.stack.pop()
        self._container((list,), "APPEND")
        self.stack[-1].append(value)

    def _load_appends(self):
        items = self.pop_mark()
        self._container((list,), "APPENDS")
        self.stack[-1].extend(items)

    def _load_setitem(self):
        value = self.stack.pop()
        key = self.stack.pop()
        self._container((dict, collections.OrderedDict), "SETITEM")
        self.stack[-1][key] = value

    def _load_setitems(self):
        items = self.pop_mark()
        self._container((dict, collections.OrderedDict), "SETITEMS")
        target = self.stack[-1]
        for i in range(0, len(items) - 1, 2):
            target[items[i]] = items[i + 1]

    def _load_additems(self):
        items = self.pop_mark()
        self._container((set,), "ADDITEMS")
        self.stack[-1].update(items)

    def _refuse_opcode(self):
        raise _Refused("uses an opcode that is not allowed")

    dispatch[pickle.REDUCE[0]] = _load_reduce
    dispatch[pickle.NEWOBJ[0]] = _load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = _load_newobj_ex
    dispatch[pickle.BUILD[0]] = _load_build
    dispatch[pickle.APPEND[0]] = _load_append
    dispatch[pickle.APPENDS[0]] = _load_appends
    dispatch[pickle.SETITEM[0]] = _load_setitem
    dispatch[pickle.SETITEMS[0]] = _load_setitems
    dispatch[pickle.ADDITEMS[0]] = _load_additems
    for _code in (
        pickle.INST,
        pickle.OBJ,
        pickle.EXT1,
        pickle.EXT2,
        pickle.EXT4,
        pickle.PERSID,
        pickle.BINPERSID,
        pickle.NEXT_BUFFER,
        pickle.READONLY_BUFFER,
    ):
        dispatch[_code[0]] = _refuse_opcode
    del _code


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
    try:
        _prescan(data)
        obj = _SafeUnpickler(io.BytesIO(data), str(path)).load()
    except UnsafePickleError:
        raise
    except _Refused as exc:
        raise UnsafePickleError(
            f"{path} {exc}; refusing to load it (a model file may only use the classes "
            "a model is made of)"
        ) from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
        MemoryError,
        OverflowError,
        RecursionError,
        struct_error,
    ) as exc:
        raise ModelFileError(
            f"{path} is not a valid pylearn_vae model file ({type(exc).__name__}: {exc})"
        ) from None
    check_finite_params(obj, str(path))
    return obj
