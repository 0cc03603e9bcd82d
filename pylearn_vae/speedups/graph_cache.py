"""A disk cache of rewritten graphs: a warm start skips PyTensor's rewrites.

PyTensor caches the Numba code it generates, but it rewrites every graph
again in every process, a large part of the time from ``scripts/train.py``
start to the first step (docs/performance.md). This module stores the rewritten graph of each
function compiled through :func:`pylearn_vae.compile.function` and,
when the same graph is compiled again, builds the function from it.

The entry is found by a key that describes the whole graph before rewriting:
every node's operation with all its parameters, every constant's value, the
types of the inputs and shared variables, the updates, the compile mode, the
relevant PyTensor settings, the versions of PyTensor and Numba and the source
of this package. Anything the key cannot describe exactly (an operation
without ``__props__``, a closure among its parameters, ...) makes the
function compile the ordinary way, uncached. Shared variables and inputs are
stored as positions, so a loaded graph computes on the caller's own
variables; their values are never stored.

Entries live in ``<PyTensor compiledir>/pylearn_vae_graphs``; delete the
directory to clear them. Set ``PYLEARN_VAE_GRAPH_CACHE=0`` to turn the cache
off. They are pickles, trusted like the compiled code PyTensor keeps in the
same directory. Only Numba modes use the cache.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import sys
import types
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytensor
from pytensor.compile.io import In, Out
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.traversal import toposort

from pylearn_vae.speedups import internals, support
from pylearn_vae.speedups.source import PACKAGE_ROOT, source_digest

__all__ = ["cached_function", "graph_key", "describe_graph", "cache_enabled"]

#: Part of every key: raise it when the stored format or its meaning changes.
_FORMAT = 1
#: PyTensor settings that change what a graph is rewritten into.
_CONFIG_FLAGS = (
    "floatX",
    "cast_policy",
    "optimizer",
    "optimizer_excluding",
    "optimizer_including",
    "optimizer_requiring",
    "numba__fastmath",
    "numba__cache",
)


class NotCacheable(Exception):
    """The graph holds something the key cannot describe exactly."""


def cache_enabled() -> bool:
    return os.environ.get("PYLEARN_VAE_GRAPH_CACHE", "1") != "0"


def _cache_dir() -> Path:
    return Path(pytensor.config.compiledir) / "pylearn_vae_graphs"


# -- the key ------------------------------------------------------------------


def _source_hash() -> str:
    """Hash of this package's Python source (its rewrites and ops shape the graphs)."""
    return source_digest(PACKAGE_ROOT)


def _callable_key(fn):
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    module = getattr(fn, "__module__", None)
    if not qualname or not module or "<" in qualname:  # lambdas and closures
        raise NotCacheable(f"cannot describe {fn!r}")
    return ("fn", module, qualname)


def _type_key(t) -> tuple:
    dtype, shape = getattr(t, "dtype", None), getattr(t, "shape", None)
    return (type(t).__module__, type(t).__qualname__, str(dtype), repr(shape), str(t))


def _value_key(value):
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return (type(value).__name__, repr(value))
    if isinstance(value, np.generic):
        return ("np", value.dtype.str, repr(value.item()))
    if isinstance(value, np.dtype):
        return ("dtype", value.str)
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise NotCacheable("an array of Python objects")
        digest = hashlib.sha256(value.tobytes()).hexdigest()  # C order, any layout
        return ("nd", value.dtype.str, value.shape, digest)
    if isinstance(value, tuple | list):
        return (type(value).__name__, tuple(_value_key(v) for v in value))
    if isinstance(value, Mapping):  # also PyTensor's frozendict (whose hash is cached lazily)
        return (
            "map",
            tuple(sorted((repr(_value_key(k)), _value_key(v)) for k, v in value.items())),
        )
    if isinstance(value, set | frozenset):
        return ("set", tuple(sorted(repr(_value_key(v)) for v in value)))
    if isinstance(value, slice):
        return ("slice", _value_key(value.start), _value_key(value.stop), _value_key(value.step))
    if isinstance(value, pytensor.graph.type.Type):
        return ("type", _type_key(value))
    if isinstance(value, Variable):
        raise NotCacheable("an operation holds a variable among its parameters")
    if isinstance(value, type):
        return ("class", value.__module__, value.__qualname__)
    if isinstance(value, np.ufunc):
        return ("ufunc", value.__name__)
    if isinstance(value, types.FunctionType | types.BuiltinFunctionType | types.MethodType):
        return _callable_key(value)
    return _object_key(value)


def _object_key(obj) -> tuple:
    """An object of PyTensor or this package: its class and its parameters.

    With ``__props__`` (an Op) those define it; otherwise its whole instance
    dictionary does (a scalar op such as Cast, an output-type rule). Classes
    themselves are covered by the PyTensor version and this package's source
    hash in the key; objects of other libraries are not described.
    """
    cls = type(obj)
    if not cls.__module__.startswith(("pytensor.", "pylearn_vae.")):
        raise NotCacheable(f"cannot describe a {cls.__module__}.{cls.__qualname__}")
    props = getattr(cls, "__props__", None)
    if props is not None:
        params = tuple((name, _value_key(getattr(obj, name))) for name in props)
    else:
        try:
            state = vars(obj)
        except TypeError:  # __slots__
            raise NotCacheable(f"cannot describe a {cls.__qualname__}") from None
        params = tuple((name, _value_key(state[name])) for name in sorted(state))
    return (cls.__module__, cls.__qualname__, params)


def _mode_key(mode) -> tuple:
    query = internals.rewrite_query(mode)
    if query is None:
        raise NotCacheable("the mode's rewrites are not found")
    parts = [type(mode.linker).__module__, type(mode.linker).__qualname__]
    for attr in ("include", "require", "exclude"):
        parts.append(tuple(sorted(str(t) for t in getattr(query, attr, ()) or ())))
    for rewrite, position in getattr(query, "extra_rewrites", ()) or ():
        # Which rewrites, at which positions; their code is in the source hash.
        # (Not their ``name``: PyTensor sets it, with an object id, once they ran.)
        inner = re.sub(r"0x[0-9a-f]+", "", str(getattr(rewrite, "node_rewriter", "")))
        parts.append((type(rewrite).__qualname__, inner, repr(position)))
    return tuple(parts)


def graph_key(inputs, outputs, updates, mode) -> tuple[str, list[SharedVariable]]:
    """The cache key of a function, and its shared variables in key order.

    Raises :class:`NotCacheable` when the graph cannot be described exactly.
    """
    lines, shared = describe_graph(inputs, outputs, updates, mode)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest(), shared


def describe_graph(inputs, outputs, updates, mode) -> tuple[list[str], list[SharedVariable]]:
    """The text :func:`graph_key` hashes (one line per input, variable and node)."""
    import numba

    tokens: dict[int, str] = {}
    shared: list[SharedVariable] = []
    lines = [
        repr(
            (
                _FORMAT,
                sys.version_info[:3],
                pytensor.__version__,
                numba.__version__,
                _source_hash(),
                _mode_key(mode),
                tuple((flag, str(getattr(pytensor.config, flag))) for flag in _CONFIG_FLAGS),
            )
        )
    ]
    for k, var in enumerate(inputs):
        if not isinstance(var, Variable) or var.owner is not None or isinstance(var, Constant):
            raise NotCacheable("inputs must be root variables")
        tokens[id(var)] = f"i{k}"
        lines.append(repr(("input", k, _type_key(var.type))))

    def token(var) -> str:
        known = tokens.get(id(var))
        if known is not None:
            return known
        if isinstance(var, SharedVariable):
            name = f"s{len(shared)}"
            shared.append(var)
            lines.append(repr(("shared", name, _type_key(var.type))))
        elif isinstance(var, Constant):
            name = f"c{len(tokens)}"
            lines.append(repr(("constant", name, _type_key(var.type), _value_key(var.data))))
        else:
            raise NotCacheable("the graph depends on a variable that is not an input")
        tokens[id(var)] = name
        return name

    roots = list(outputs) + [value for _, value in updates]
    for n, node in enumerate(toposort(roots)):
        ins = [token(v) for v in node.inputs]
        for j, out in enumerate(node.outputs):
            tokens[id(out)] = f"n{n}.{j}"
        out_types = [_type_key(o.type) for o in node.outputs]
        lines.append(repr(("node", n, _object_key(node.op), ins, out_types)))
    lines.append(repr(("outputs", [token(v) for v in outputs])))
    lines.append(repr(("updates", [(token(target), token(value)) for target, value in updates])))
    return lines, shared


# -- storing and loading -------------------------------------------------------
class _GraphPickler(pickle.Pickler):
    def __init__(self, file, placeholders: dict[int, tuple]):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._placeholders = placeholders

    def persistent_id(self, obj):
        return self._placeholders.get(id(obj))


class _GraphUnpickler(pickle.Unpickler):
    def __init__(self, file, variables: dict[str, list]):
        super().__init__(file)
        self._variables = variables  # "input" / "shared" -> the caller's variables

    def persistent_load(self, pid):
        kind, index = pid
        return self._variables[kind][index]


def _array_constants(order) -> list[Constant]:
    """The array constants of a graph, in a fixed order (first use in ``order``)."""
    found, seen = [], set()
    for node in order:
        for var in node.inputs:
            if isinstance(var, Constant) and isinstance(var.data, np.ndarray):
                if id(var) not in seen:
                    seen.add(id(var))
                    found.append(var)
    return found


def _same_values_with_strides(data: np.ndarray, strides) -> bool:
    """Whether viewing ``data`` with ``strides`` reads the values it holds: true
    for an empty array, and where each changed stride is 0 over repeated values
    or runs along a dimension of length 1."""
    if data.size == 0:
        return True
    for axis, (old, new) in enumerate(zip(data.strides, strides, strict=True)):
        if old == new or data.shape[axis] == 1:
            continue
        if new != 0:
            return False
        first = np.take(data, [0], axis=axis)
        if not np.array_equal(data, np.broadcast_to(first, data.shape)):
            return False
    return True


def _store(path: Path, function, inputs, shared) -> None:
    from pylearn_vae.utils.files import atomic_write

    fgraph = internals.compiled_graph(function)
    input_specs = internals.input_specs(function)
    output_specs = internals.output_specs(function)
    if fgraph is None or input_specs is None or output_specs is None:
        raise NotCacheable("the compiled function's graph is not found")
    placeholders = {id(v): ("input", k) for k, v in enumerate(inputs)}
    placeholders.update({id(v): ("shared", k) for k, v in enumerate(shared)})
    fgraph_inputs = []
    for var in fgraph.inputs:
        pid = placeholders.get(id(var))
        if pid is None:  # PyTensor cloned an input: nothing to map it to
            raise NotCacheable("the compiled graph's inputs are not the caller's variables")
        fgraph_inputs.append(pid)
    specs = [
        (spec.mutable, spec.borrow, spec.implicit, spec.strict, spec.allow_downcast)
        for spec in input_specs
    ]
    order = fgraph.toposort()
    record = {
        "inputs": fgraph_inputs,
        "outputs": list(fgraph.outputs),
        "order": order,
        "constant_strides": [c.data.strides for c in _array_constants(order)],
        "update_mapping": dict(fgraph.update_mapping),
        "input_specs": specs,
        "output_borrow": [spec.borrow for spec in output_specs],
    }
    buffer = io.BytesIO()
    _GraphPickler(buffer, placeholders).dump(record)
    data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: handle.write(data))


def _stored_graph(path: Path, record: dict, fgraph_inputs: list) -> FunctionGraph:
    """The rewritten graph of ``record`` on the caller's variables, in its stored order."""
    fgraph = FunctionGraph(
        fgraph_inputs, record["outputs"], update_mapping=record["update_mapping"], clone=False
    )
    order = tuple(record["order"])
    if set(order) != set(fgraph.apply_nodes):
        raise ValueError(f"{path}: the stored node order does not match the graph")
    # PyTensor's Numba cache key of a graph follows its node order (and its
    # class, so the graph stays a plain FunctionGraph), and a rebuilt graph
    # can order independent nodes differently; with the stored order its
    # Numba code is found in the cache. The graph is not rewritten after loading.
    if not internals.fix_node_order(fgraph, order):
        raise NotCacheable("a graph's node order cannot be fixed")
    # PyTensor's key of an array constant includes its strides, which pickling
    # does not keep (an empty or broadcast array comes back compact).
    for constant, strides in zip(_array_constants(order), record["constant_strides"], strict=True):
        data = constant.data
        if data.strides != strides and _same_values_with_strides(data, strides):
            constant.data = np.lib.stride_tricks.as_strided(data, data.shape, strides)
    return fgraph


def _function_inputs(fgraph: FunctionGraph, fgraph_inputs: list, record: dict) -> list:
    """The ``In`` specifications of the stored function's inputs, updates included."""
    update_of = {in_idx: out_idx for out_idx, in_idx in record["update_mapping"].items()}
    ins = []
    for k, (var, spec) in enumerate(zip(fgraph_inputs, record["input_specs"], strict=True)):
        mutable, borrow, implicit, strict, allow_downcast = spec
        ins.append(
            In(
                var,
                value=var.container if isinstance(var, SharedVariable) else None,
                update=fgraph.outputs[update_of[k]] if k in update_of else None,
                mutable=mutable,
                borrow=borrow,
                implicit=implicit,
                strict=strict,
                allow_downcast=allow_downcast,
            )
        )
    return ins


def _load(path: Path, inputs, shared, mode, single: bool):
    """The function stored at ``path``, computing on the caller's ``inputs`` and ``shared``."""
    variables = {"input": inputs, "shared": shared}
    with open(path, "rb") as handle:
        record = _GraphUnpickler(handle, variables).load()
    fgraph_inputs = [variables[kind][index] for kind, index in record["inputs"]]
    fgraph = _stored_graph(path, record, fgraph_inputs)
    ins = _function_inputs(fgraph, fgraph_inputs, record)
    borrow = record["output_borrow"]
    outs = [
        Out(out, borrow=borrow[j] if j < len(borrow) else False)
        for j, out in enumerate(fgraph.outputs)
    ]
    maker = internals.get("FunctionMaker")(
        inputs=ins,
        outputs=outs,
        fgraph=fgraph,
        mode=mode,
        accept_inplace=True,
        no_fgraph_prep=True,
        on_unused_input="ignore",
    )
    fn = maker.create([spec.value for spec in ins])
    if not internals.set_unpack_single(fn, single):
        raise NotCacheable("a loaded function's outputs cannot be unpacked")
    return fn


def cached_function(inputs, outputs, updates, mode, on_stored=None):
    """Compile like ``pytensor.function(inputs, outputs, updates=updates, mode=mode)``,
    through the cache of rewritten graphs. A graph not found in the cache is
    compiled and stored; ``on_stored(function, path, inputs, shared)``, if
    given, then returns what to give the caller (see
    :func:`pylearn_vae.speedups.precompile.compile_elsewhere`)."""
    single = isinstance(outputs, Variable)
    input_list = list(inputs)
    output_list = [outputs] if single else list(outputs)
    update_pairs = list(updates)

    def compile_plain():
        return pytensor.function(inputs, outputs, updates=update_pairs, mode=mode)

    if not (cache_enabled() and support.available("graph_cache")):
        return compile_plain()
    try:
        key, shared = graph_key(input_list, output_list, update_pairs, mode)
    except NotCacheable:
        return compile_plain()
    path = _cache_dir() / f"{key}.pkl"
    if path.exists():
        try:
            return _load(path, input_list, shared, mode, single)
        except Exception:  # a damaged or unreadable entry: compile and replace it
            pass
    fn = compile_plain()
    try:
        _store(path, fn, input_list, shared)
    except Exception:  # a full disk, a read-only cache, a graph that does not pickle:
        return fn  # the function works; it is just not cached
    if on_stored is not None:
        return on_stored(fn, path, input_list, shared)
    return fn
