"""The restricted unpickler behind :func:`pylearn_vae.persistence.load` (``.pkl`` files).

A model pickle may only name, by exact ``(module, name)``, the classes a
model is made of and a few NumPy helpers, which resolve to the package's own
versions: they check their arguments and rebuild arrays and seed sequences
with public NumPy API only (the stream still names NumPy's private paths).
Names are never resolved by walking attributes, and the opcodes that call or
extend objects are narrowed (see :class:`_SafeUnpickler`). :func:`loads` is
the entry point.
"""

from __future__ import annotations

import collections
import importlib
import io
import math
import pickle
import pickletools
import reprlib
from struct import error as struct_error

import numpy as np

from pylearn_vae.errors import UnsafePickleError
from pylearn_vae.utils.files import ModelFileError

__all__ = ["UnsafePickleError", "loads"]


# Values quoted in refusals: a file can make a structure whose full repr (or
# hash) takes time and memory doubling with each level of nesting.
_BRIEF = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxstring, _BRIEF.maxother = 2, 60, 60
_BRIEF.maxtuple = _BRIEF.maxlist = _BRIEF.maxdict = _BRIEF.maxset = 4


def _brief(value) -> str:
    """A short repr of ``value`` for a message, in bounded time."""
    return _BRIEF.repr(value)


class _Refused(Exception):
    """Raised inside the unpickler; :func:`loads` adds the file name."""


_FLOAT_KINDS = "biufc"
# Model pickles hold legacy RandomState objects (MT19937) only.
_BIT_GENERATORS = {"MT19937": np.random.MT19937}

# The fields of a pickled numpy.random.SeedSequence, in the order of its state
# tuple, and the checksums of that layout that Cython writes and accepts
# (NumPy 1.26 to 2.5 write the first). Another layout is refused.
_SEED_SEQUENCE_FIELDS = ("entropy", "n_children_spawned", "pool", "pool_size", "spawn_key")
_SEED_SEQUENCE_CHECKSUMS = frozenset({0x3EAA222, 0xC464C19, 0xF88304A})
# Rebuilding a SeedSequence costs about pool_size * (pool_size + seed words)
# hash steps; NumPy's default pool is 4 words and a seed a few words.
_MAX_POOL_SIZE = 64  # (NumPy never makes another than 4)
_MAX_SEED_WORDS = 4096


def _check_dtype(dtype) -> np.dtype:
    if (
        not isinstance(dtype, np.dtype)
        or dtype.kind not in _FLOAT_KINDS
        or dtype.fields is not None
        or dtype.subdtype is not None
        or dtype.hasobject
    ):
        raise _Refused(f"dtype {_brief(dtype)} is not a plain numeric type")
    return dtype


def _check_shape(shape) -> int:
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise _Refused(f"array shape {_brief(shape)} is not a tuple of non-negative integers")
    return math.prod(shape)


def _safe_dtype(spec, align=False, copy=False) -> np.dtype:
    if not isinstance(spec, str) or len(spec) > 8:
        raise _Refused(f"dtype {_brief(spec)} is not a plain numeric type name")
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
        raise _Refused(f"array order {_brief(order)} is not 'C' or 'F'")
    # What NumPy's own ``_frombuffer`` (the name its protocol-5 pickles of
    # contiguous arrays call) does: a view of the buffer, with no copy, so the
    # array is writeable exactly when the file stored it so (a bytearray).
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)


def _bit_generator(name):
    if isinstance(name, tuple(_BIT_GENERATORS.values())):
        return name
    if type(name) is str and name in _BIT_GENERATORS:
        return _BIT_GENERATORS[name]()
    if isinstance(name, type) and name in _BIT_GENERATORS.values():
        return name()
    raise _Refused(f"bit generator {_brief(name)} is not one of {', '.join(_BIT_GENERATORS)}")


def _safe_bit_generator_ctor(bit_generator="MT19937"):
    generator = _bit_generator(bit_generator)
    if generator is bit_generator:
        raise _Refused("a bit generator constructor was given an instance")
    return generator


def _check_ctor(ctor) -> None:
    if ctor is not None and ctor is not _safe_bit_generator_ctor:
        raise _Refused(f"bit generator constructor {_brief(ctor)} is not NumPy's")


def _safe_randomstate_ctor(bit_generator_name="MT19937", bit_generator_ctor=None):
    _check_ctor(bit_generator_ctor)
    return np.random.RandomState(_bit_generator(bit_generator_name))


def _words(value) -> int:
    """An upper bound on the 32-bit words NumPy makes of a seed (an int, a
    string of digits, or a sequence or array of them); -1 for anything else."""
    if isinstance(value, int):
        return value.bit_length() // 32 + 1
    if isinstance(value, str):
        return len(value)
    if isinstance(value, np.ndarray):
        return 2 * value.size if value.dtype.kind in "iu" else -1
    if isinstance(value, (list, tuple)):
        words = [_words(v) for v in value if isinstance(v, (int, str))]
        return sum(words) if len(words) == len(value) else -1
    return -1


def _rebuild_seed_sequence(seq: np.random.SeedSequence, state) -> None:
    """Initialise ``seq`` from its pickled ``state`` through NumPy's public
    constructor, and check that the pickled pool is the one it computes.

    ``state`` is what Cython's pickling of SeedSequence stores:
    ``(entropy, n_children_spawned, pool, pool_size, spawn_key)``. The pool
    follows from the other four, so it is recomputed, not trusted. The
    constructor's cost grows with ``pool_size`` times the words of entropy,
    which are bounded first.
    """
    if type(state) is not tuple or len(state) != len(_SEED_SEQUENCE_FIELDS):
        raise _Refused(
            "gives a numpy.random.SeedSequence a state that is not a tuple of "
            f"({', '.join(_SEED_SEQUENCE_FIELDS)})"
        )
    entropy, n_children_spawned, pool, pool_size, spawn_key = state
    if type(pool_size) is not int or pool_size > _MAX_POOL_SIZE:
        raise _Refused(
            f"gives a numpy.random.SeedSequence the pool_size {_brief(pool_size)}, "
            f"expected an integer of at most {_MAX_POOL_SIZE}"
        )
    if entropy is None:  # NumPy's constructor would draw fresh entropy from the system
        raise _Refused("gives a numpy.random.SeedSequence no entropy")
    if type(spawn_key) is not tuple:
        raise _Refused(
            f"gives a numpy.random.SeedSequence a {type(spawn_key).__name__} as spawn_key, "
            "expected a tuple"
        )
    words = (_words(entropy), _words(spawn_key))
    if min(words) < 0 or sum(words) > _MAX_SEED_WORDS:
        raise _Refused(
            "gives a numpy.random.SeedSequence an entropy or spawn_key that is not "
            f"integers of at most {_MAX_SEED_WORDS} 32-bit words"
        )
    if not (
        isinstance(pool, np.ndarray)
        and pool.dtype.kind == "u"
        and pool.dtype.itemsize == 4
        and pool.shape == (pool_size,)
    ):
        raise _Refused(
            f"gives a numpy.random.SeedSequence a pool that is not {pool_size} uint32 words"
        )
    # __init__ on the instance the stream already refers to (its memo may
    # hold it): the public constructor, keeping the object's identity.
    np.random.SeedSequence.__init__(
        seq,
        entropy,
        spawn_key=spawn_key,
        pool_size=pool_size,
        n_children_spawned=n_children_spawned,
    )
    if not np.array_equal(seq.pool, pool):
        raise _Refused(
            "holds a numpy.random.SeedSequence whose pool does not follow from its entropy, "
            "spawn_key and pool_size (the file was altered)"
        )


def _safe_unpickle_seed_sequence(cls, checksum, state):
    """Stands for NumPy's ``__pyx_unpickle_SeedSequence``: an empty
    SeedSequence that BUILD then fills (or ``state``, when given here)."""
    if cls is not np.random.SeedSequence:
        raise _Refused(f"{_brief(cls)} is not numpy.random.SeedSequence")
    if type(checksum) is not int or checksum not in _SEED_SEQUENCE_CHECKSUMS:
        raise _Refused(
            f"names a numpy.random.SeedSequence layout {_brief(checksum)} that is not "
            f"({', '.join(_SEED_SEQUENCE_FIELDS)})"
        )
    seq = cls.__new__(cls)
    if state is not None:
        _rebuild_seed_sequence(seq, state)
    return seq


# Functions a pickle may name, and call with REDUCE: exact (module, name) ->
# the checking wrapper that is called instead of the real function.
_FUNCTIONS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("numpy", "dtype"): _safe_dtype,
    ("numpy._core.numeric", "_frombuffer"): _safe_frombuffer,
    ("numpy.core.numeric", "_frombuffer"): _safe_frombuffer,
    ("numpy.random._pickle", "__bit_generator_ctor"): _safe_bit_generator_ctor,
    ("numpy.random._pickle", "__randomstate_ctor"): _safe_randomstate_ctor,
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"): _safe_unpickle_seed_sequence,
}

# Classes a pickle may name as arguments (not call): exact (module, name) -> class.
_NUMPY_CLASSES = {
    ("numpy.random._mt19937", "MT19937"): np.random.MT19937,
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
    np.random.MT19937,
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


# What a dict key or set item may be: hashing a tuple hashes what it holds, so
# a key that is a deep tuple DAG (a few hundred bytes of pickle) would take
# for ever. A model's dicts are keyed by names.
_KEY_TYPES = frozenset({str, int, float, bool, bytes, type(None)})


def _checked_key(key):
    if type(key) in _KEY_TYPES or (
        type(key) is tuple and all(type(part) in _KEY_TYPES for part in key)
    ):
        return key
    raise _Refused(
        f"uses a {type(key).__name__} holding containers as a dictionary key or set item "
        "(a model's are names)"
    )


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
        self._seed_sequences: list[np.random.SeedSequence] = []

    def load(self):
        result = super().load()
        if any(seq.pool is None for seq in self._seed_sequences):
            raise _Refused("makes a numpy.random.SeedSequence and never gives its state")
        return result

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
        result = func(*args)
        if func is _safe_unpickle_seed_sequence:
            self._seed_sequences.append(result)
        self.stack[-1] = result

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
        if not isinstance(cls, type) or cls not in self._classes:  # (a class before hashing it)
            raise _Refused(f"creates {_brief(cls)}, which a model file may not create")
        if args != () or kwargs != {}:
            raise _Refused(f"creates {cls.__qualname__} with constructor arguments")
        return cls.__new__(cls)

    def _load_build(self):
        inst = self.stack[-2]
        if type(inst) is np.random.SeedSequence:
            # NumPy's own __setstate__ would take the pool as given.
            if inst.pool is not None:
                raise _Refused("sets the state of a numpy.random.SeedSequence twice")
            _rebuild_seed_sequence(inst, self.stack.pop())
            return
        if not (type(inst) in self._classes or isinstance(inst, _BUILDABLE)):
            raise _Refused(f"sets the state of a {type(inst).__name__}, which is not allowed")
        if isinstance(inst, np.dtype) and type(self.stack[-1]) is not tuple:
            # (NumPy fails with a SystemError on anything else)
            raise _Refused("sets the state of a numpy.dtype with something other than a tuple")
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
        self.stack[-1][_checked_key(key)] = value

    def _load_setitems(self):
        items = self.pop_mark()
        self._container((dict, collections.OrderedDict), "SETITEMS")
        target = self.stack[-1]
        for i in range(0, len(items) - 1, 2):
            target[_checked_key(items[i])] = items[i + 1]

    def _load_additems(self):
        items = self.pop_mark()
        self._container((set,), "ADDITEMS")
        self.stack[-1].update(_checked_key(item) for item in items)

    def _load_dict(self):
        items = self.pop_mark()
        self.append({_checked_key(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)})

    def _load_frozenset(self):
        items = self.pop_mark()
        self.append(frozenset(_checked_key(item) for item in items))

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
    dispatch[pickle.DICT[0]] = _load_dict
    dispatch[pickle.FROZENSET[0]] = _load_frozenset
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


def loads(data: bytes, where: str):
    """Unpickle ``data`` (the bytes of the file ``where``) with the restricted unpickler.

    Raises :class:`UnsafePickleError` when the data name anything outside the
    allow-list or use a refused opcode, and :class:`ModelFileError` when they
    are not a valid pickle.
    """
    try:
        _prescan(data)
        return _SafeUnpickler(io.BytesIO(data), where).load()
    except UnsafePickleError:
        raise
    except _Refused as exc:
        raise UnsafePickleError(
            f"{where} {exc}; refusing to load it (a model file may only use the classes "
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
        SystemError,  # (NumPy's C code refusing a state it was given)
        struct_error,
    ) as exc:
        raise ModelFileError(
            f"{where} is not a valid pylearn_vae model file ({type(exc).__name__}: {exc})"
        ) from None
