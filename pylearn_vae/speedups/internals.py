"""Every private name of PyTensor, Numba, NumPy and llvmlite the package uses, in one place.

The speed-ups hook into PyTensor's Numba and C backends, its compiled
functions and Numba's dispatchers through names that are not a documented,
versioned API. Each is named here once, with the speed-ups that need it
(:data:`SPEEDUPS`):

* :data:`REQUIRED`: names a module defines (a class attribute is written
  ``Class.attribute``), resolved by :func:`get` and :func:`find`;
* :data:`CHECKS`: what is looked at in them beyond their presence (a
  signature, the order of PyTensor's rewrite passes), each a function here;
* :data:`ATTRIBUTES`: attributes of objects made at run time (a compiled
  function's graph, a Numba dispatcher's disk cache), each read or set by
  one accessor here, which returns None (or False) where it is not found.

No other module of the package imports these modules or reads these
attributes (``tests/ops/test_internals.py`` reads the package's source to
check it). Where one is gone, only the speed-up that needs it turns off,
and what PyTensor does on its own runs instead: :func:`missing` and
:func:`usable` tell it for :data:`REQUIRED` and :data:`CHECKS`, and each
caller of an accessor falls back when it gets None:

================  =============================================================
speed-up          without it
================  =============================================================
numba             PyTensor's own Numba code, after one
                  :class:`~pylearn_vae.errors.SpeedupsUnavailableWarning`
numba_im2col      the patch operations' NumPy ``perform`` (one warning)
graph_cache       every function compiled the ordinary way (one warning)
precompile        the Numba code compiled at the first call, in this process
checked_once      every call checked by PyTensor
c_math, c_loops   PyTensor's own C code
jax_device        shared values stay on the host (copied at each call)
================  =============================================================

``tests/ops/test_internals.py`` fails, naming the entry and the speed-up,
when an installed PyTensor or Numba moves one, and shows for each speed-up
that the package computes the same numbers without it.

Public API, used directly by the rest of the package (not listed here):
``pytensor.function``, ``pytensor.shared``, ``Mode(linker, optimizer, db)``
with ``Mode.linker``, ``Mode.register`` and ``get_mode``, the
``pytensor.config`` flags; graphs (``Apply``, ``Variable``, ``Constant``,
``FunctionGraph`` and its ``inputs``, ``outputs``, ``apply_nodes``,
``update_mapping``, ``toposort()``, ``pytensor.graph.traversal``); rewrites
(``in2out``, ``node_rewriter``, a ``RewriteDatabaseQuery``'s ``include``,
``require``, ``exclude`` and ``extra_rewrites`` of ``(rewrite, position)``
pairs: its constructor's documented parameters); operations (``Op``,
``COp`` and its ``c_*`` methods, from PyTensor's guide to writing C code,
scalar operations, ``Composite``, whose ``fgraph`` is among its
``__props__``, ``Elemwise`` and ``DimShuffle``'s constructor parameters and
``__props__``); ``pytensor.link.jax.dispatch.jax_funcify``, with which
:mod:`pylearn_vae.ops.jax_im2col` registers the patch operations' JAX code
as step 3 of PyTensor's guide "Adding JAX, Numba and Pytorch support for
Ops" shows (the Numba backend's dispatch, whose helpers used here go
beyond that guide and changed between PyTensor 3.0 and 3.3, is listed
above); ``In``/``Out``, ``SharedVariable(type, value, strict)`` and its
``container`` (documented constructor parameters); a ``Function``'s
``trust_input`` (documented on ``Function``). Numba: ``njit`` and its
options, ``numba.extending.intrinsic``, ``numba.types``, ``numba.typeof``,
``numba.from_dtype``, a dispatcher's ``py_func``, ``compile(signature)``,
``overloads`` and ``stats``. llvmlite: ``llvmlite.ir`` (the IR builder,
``Module.declare_intrinsic``). NumPy: ``numpy.lib.stride_tricks``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "SPEEDUPS",
    "Internal",
    "REQUIRED",
    "Check",
    "CHECKS",
    "Attribute",
    "ATTRIBUTES",
    "PASSES",
    "get",
    "find",
    "missing",
    "usable",
    "function_maker_takes_a_graph",
    "elemwise_c_parts_available",
    "extend_elemwise_c_parts",
    "rewrite_position",
    "rewrite_positions_hold",
    "dimshuffle_c_file",
    "dimshuffle_c_file_found",
    "numba_mode_parts_found",
    "core_calls_through_storing_wrapper",
    "mark_storing",
    "rewrite_query",
    "mode_with",
    "linker_as",
    "input_specs",
    "output_specs",
    "compiled_graph",
    "input_cells",
    "set_unpack_single",
    "fix_node_order",
    "compiled_dispatcher",
    "vm_input_cells",
    "numba_cache_reader",
    "in_numba_cache",
    "value_cell",
]

#: Each speed-up, by the name the tables below use.
SPEEDUPS: dict[str, str] = {
    "numba": "the Numba backend's rewrites, fused loops and positional linker",
    "numba_im2col": "the convolutions' Numba patch loops",
    "graph_cache": "the cache of rewritten graphs",
    "precompile": "compiling Numba code in a second process",
    "checked_once": "calls that skip PyTensor's input checks (CheckedOnce)",
    "c_math": "the C backend's branch-free float32 math",
    "c_loops": "the C backend's vectorised loops",
    "jax_device": "keeping shared values on JAX's device",
}


class Internal(NamedTuple):
    """A name defined by ``module``: ``attribute`` (dotted below the module
    for an attribute of a class or object there), needed by ``speedups``."""

    module: str
    attribute: str
    speedups: tuple[str, ...]

    @property
    def path(self) -> str:
        return f"{self.module}.{self.attribute}"


_NUMBA_DISPATCH = "pytensor.link.numba.dispatch.basic"

#: Short name -> where the name is, and the speed-ups that need it.
REQUIRED: dict[str, Internal] = {
    # The Numba backend's dispatch: Numba code for each operation, with a
    # cache key for Numba's disk cache (numba_math, numba_linker).
    "numba_funcify": Internal(_NUMBA_DISPATCH, "numba_funcify", ("numba",)),
    "numba_funcify_and_cache_key": Internal(
        _NUMBA_DISPATCH, "numba_funcify_and_cache_key", ("numba",)
    ),
    "register_funcify_and_cache_key": Internal(
        _NUMBA_DISPATCH, "register_funcify_and_cache_key", ("numba",)
    ),
    "numba_njit": Internal(_NUMBA_DISPATCH, "numba_njit", ("numba", "numba_im2col")),
    # Registers an operation's Numba code with a cache key made of its
    # properties (the convolutions' patch loops, numba_im2col).
    "register_funcify_default_op_cache_key": Internal(
        _NUMBA_DISPATCH, "register_funcify_default_op_cache_key", ("numba_im2col",)
    ),
    # Compiles generated source so that Numba can cache it on disk.
    "compile_numba_function_src": Internal(
        "pytensor.link.numba.cache", "compile_numba_function_src", ("numba",)
    ),
    # The positional linker subclasses the Numba linker and replaces the
    # hook that turns a graph into one compiled function.
    "NumbaLinker": Internal("pytensor.link.numba.linker", "NumbaLinker", ("numba",)),
    "NumbaLinker.fgraph_convert": Internal(
        "pytensor.link.numba.linker", "NumbaLinker.fgraph_convert", ("numba",)
    ),
    # What Numba raises when it cannot compile: a graph compiled with the
    # speed-ups that fails so is rebuilt without them (support).
    "NumbaError": Internal("numba.core.errors", "NumbaError", ("numba",)),
    # The graph cache builds functions from already rewritten graphs, as
    # does the second process from the cache's entries.
    "FunctionMaker": Internal(
        "pytensor.compile.maker", "FunctionMaker", ("graph_cache", "precompile")
    ),
    "FunctionMaker.create": Internal(
        "pytensor.compile.maker", "FunctionMaker.create", ("graph_cache", "precompile")
    ),
    # The parts of an elementwise loop's C code (c_loops).
    "Elemwise._c_all": Internal("pytensor.tensor.elemwise", "Elemwise._c_all", ("c_loops",)),
    # The positions of PyTensor's rewrite passes (see PASSES).
    "optdb.__position__": Internal(
        "pytensor.compile.mode", "optdb.__position__", ("numba", "c_math", "c_loops")
    ),
}


class Check(NamedTuple):
    """Something looked at beyond a name's presence: the function of this
    module that tells whether it holds, and the speed-ups that need it."""

    function: str
    speedups: tuple[str, ...]


#: What must hold -> the check and the speed-ups that need it.
CHECKS: dict[str, Check] = {
    "pytensor.compile.maker.FunctionMaker(fgraph=, no_fgraph_prep=, accept_inplace=)": Check(
        "function_maker_takes_a_graph", ("graph_cache", "precompile")
    ),
    "pytensor.tensor.elemwise.Elemwise._c_all(self, node, nodename, inames, onames, sub)": Check(
        "elemwise_c_parts_available", ("c_loops",)
    ),
    "the order of PyTensor's rewrite passes (PASSES)": Check(
        "rewrite_positions_hold", ("numba", "c_math", "c_loops")
    ),
    "pytensor.tensor.elemwise.DimShuffle.c_func_file (PyTensor 3.0-3.2)": Check(
        "dimshuffle_c_file_found", ("numba",)
    ),
    "Mode.provided_optimizer, Mode.optdb and the linker's settings (NUMBA mode)": Check(
        "numba_mode_parts_found", ("numba", "graph_cache")
    ),
}


class Attribute(NamedTuple):
    """An attribute of objects made at run time, read or set only by the
    accessor ``accessor`` of this module, and the speed-ups that need it."""

    accessor: str
    speedups: tuple[str, ...]


#: Attribute -> its accessor and the speed-ups that need it.
ATTRIBUTES: dict[str, Attribute] = {
    "Mode.provided_optimizer": Attribute("rewrite_query", ("numba", "graph_cache")),
    "Mode.optdb": Attribute("mode_with", ("numba",)),
    "Linker.__dict__ (a linker's settings)": Attribute("linker_as", ("numba",)),
    "Function.maker.inputs": Attribute(
        "input_specs", ("numba", "graph_cache", "precompile", "checked_once")
    ),
    "Function.maker.outputs": Attribute("output_specs", ("graph_cache",)),
    "Function.maker.fgraph": Attribute("compiled_graph", ("graph_cache", "precompile")),
    "Function.input_storage[k].storage": Attribute("input_cells", ("checked_once",)),
    "Function.unpack_single": Attribute("set_unpack_single", ("graph_cache",)),
    "FunctionGraph.toposort (replaced on one graph)": Attribute("fix_node_order", ("graph_cache",)),
    "Function.vm.jit_fn": Attribute("compiled_dispatcher", ("precompile",)),
    "Function.vm.inputs": Attribute("vm_input_cells", ("precompile",)),
    "Dispatcher._cache.load_overload, Dispatcher.targetctx": Attribute(
        "numba_cache_reader", ("precompile",)
    ),
    "SharedVariable.container.storage": Attribute("value_cell", ("jax_device",)),
    "handles_out (on an elementwise loop's scalar function, PyTensor 3.0-3.2)": Attribute(
        "mark_storing", ("numba",)
    ),
}


# -- names --------------------------------------------------------------------
def get(name: str) -> Any:
    """The internal called ``name`` in :data:`REQUIRED` (ImportError or
    AttributeError where it has moved)."""
    entry = REQUIRED[name]
    found = importlib.import_module(entry.module)
    for part in entry.attribute.split("."):
        found = getattr(found, part)
    return found


def find(name: str) -> Any | None:
    """The internal called ``name`` in :data:`REQUIRED`, or None where it has moved."""
    try:
        return get(name)
    except (ImportError, AttributeError):
        return None


def missing(names=None, *, speedup: str | None = None) -> list[str]:
    """What this installation lacks: the entries of :data:`REQUIRED` (all of
    them, those called ``names``, or those ``speedup`` needs) as
    ``module.attribute``, then, unless ``names`` is given, the failed
    :data:`CHECKS` (all, or those of ``speedup``)."""
    if names is None:
        wanted = [n for n, e in REQUIRED.items() if speedup is None or speedup in e.speedups]
    else:
        wanted = list(names)
    absent = [REQUIRED[name].path for name in wanted if find(name) is None]
    if names is None:
        for what, check in CHECKS.items():
            if (speedup is None or speedup in check.speedups) and not _holds(check):
                absent.append(what)
    return absent


def _holds(check: Check) -> bool:
    try:
        return bool(globals()[check.function]())  # (the module's current function)
    except Exception:  # a check that cannot be made does not hold
        return False


def usable(speedup: str) -> bool:
    """Whether every name and check ``speedup`` needs is here."""
    if speedup not in SPEEDUPS:
        raise KeyError(f"no speed-up called {speedup!r}; they are {', '.join(SPEEDUPS)}")
    return not missing(speedup=speedup)


# -- checks -------------------------------------------------------------------
def function_maker_takes_a_graph() -> bool:
    """Whether ``FunctionMaker`` builds a function from a graph already rewritten."""
    maker = find("FunctionMaker")
    if maker is None:
        return False
    parameters = inspect.signature(maker.__init__).parameters
    return {"inputs", "outputs", "mode", "fgraph", "no_fgraph_prep", "accept_inplace"} <= set(
        parameters
    )


@functools.cache
def elemwise_c_parts_available() -> bool:
    """Whether ``Elemwise`` still builds its C code through ``Elemwise._c_all``,
    which returns the parts of a loop's C code (declarations, checks,
    allocation, loop, clean-up) that :mod:`pylearn_vae.speedups.c_loops` extends."""
    found = find("Elemwise._c_all")
    if found is None:
        return False
    parameters = list(inspect.signature(found).parameters)
    return parameters == ["self", "node", "nodename", "inames", "onames", "sub"]


def extend_elemwise_c_parts(cls, extend) -> bool:
    """Have ``cls`` (a subclass of ``Elemwise``) build its C loop code from the
    parts ``Elemwise`` makes, changed by ``extend(op, parts, node, nodename,
    inames, onames)``; whether that was done (not where ``Elemwise`` makes
    them otherwise: ``cls`` then writes PyTensor's C code)."""
    if not elemwise_c_parts_available():
        return False
    method = REQUIRED["Elemwise._c_all"].attribute.split(".")[-1]

    def parts(self, node, nodename, inames, onames, sub):
        made = getattr(super(cls, self), method)(node, nodename, inames, onames, sub)
        return extend(self, made, node, nodename, inames, onames)

    parts.__name__ = parts.__qualname__ = method
    setattr(cls, method, parts)
    return True


#: PyTensor's rewrite passes that the speed-ups' rewrites are placed
#: between, each with the range its position (in PyTensor's database of
#: rewrites) must be in: the vectorised math (at 48.9) runs after PyTensor's
#: own simplifications and before elementwise fusion; the rewrites of fused
#: loops (49.1-49.25) after fusion and before the in-place rewrites.
PASSES: dict[str, tuple[float, float]] = {
    "specialize": (-math.inf, 48.9),
    "elemwise_fusion": (48.9, 49.1),
    "add_destroy_handler": (49.25, math.inf),
}


def rewrite_position(name: str) -> float | None:
    """The position of PyTensor's rewrite pass ``name`` (None where not found)."""
    import pytensor.tensor  # noqa: F401  (registers the tensor rewrites)

    positions = find("optdb.__position__")
    position = positions.get(name) if isinstance(positions, dict) else None
    return position if isinstance(position, int | float) else None


@functools.cache
def rewrite_positions_hold() -> bool:
    """Whether each pass of :data:`PASSES` is where the speed-ups' rewrites expect it."""
    for name, (low, high) in PASSES.items():
        position = rewrite_position(name)
        if position is None or not low < position < high:
            return False
    return True


def dimshuffle_c_file() -> str | None:
    """The C source file ``DimShuffle`` reads (PyTensor 3.0-3.2) as an absolute
    path, "" where it reads none, None where the file it names is not found.

    ``DimShuffle`` names it relative to the module that defines the class,
    so a subclass defined elsewhere must name it in full."""
    from pytensor.tensor import elemwise

    relative = getattr(elemwise.DimShuffle, "c_func_file", None)
    if relative is None:
        return ""
    path = Path(elemwise.__file__).parent / relative
    return str(path) if path.is_file() else None


def dimshuffle_c_file_found() -> bool:
    """Whether a subclass of ``DimShuffle`` can be made (see :func:`dimshuffle_c_file`)."""
    return dimshuffle_c_file() is not None


def numba_mode_parts_found() -> bool:
    """Whether PyTensor's NUMBA mode has the parts :func:`rewrite_query`,
    :func:`mode_with` and :func:`linker_as` read."""
    from pytensor.compile.mode import get_mode

    mode = get_mode("NUMBA")
    return (
        rewrite_query(mode) is not None
        and mode_with(mode) is not None
        and linker_as(mode.linker, type(mode.linker)) is not None
    )


#: PyTensor 3.0-3.2 call an elementwise loop's scalar function through a
#: generated wrapper that stores its results (this function), unless the
#: scalar function is marked as storing them itself (:func:`mark_storing`);
#: later versions call it directly. Only its presence is looked at.
_STORING_WRAPPER = ("pytensor.link.numba.dispatch.vectorize_codegen", "store_core_outputs")

#: The mark :data:`_STORING_WRAPPER` looks for.
_STORING_MARK = "handles_out"


def core_calls_through_storing_wrapper() -> bool:
    """Whether PyTensor's elementwise loops call a scalar function through a
    storing wrapper of their own.

    Such a wrapper is not inlined once the expression is large, which costs
    a call per element and keeps the loop scalar (measured in
    docs/performance.md); the fused loops then provide the storing function
    themselves (:func:`mark_storing`). Where PyTensor calls the scalar
    function directly it also calls it outside elementwise loops (for
    example on 0-d values), where only a plain function fits.
    """
    module, attribute = _STORING_WRAPPER
    try:
        getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError):
        return False
    return True


def mark_storing(function) -> None:
    """Mark a Numba ``function(*inputs, *outputs)`` as storing its results
    into its output arguments (for :func:`core_calls_through_storing_wrapper`)."""
    setattr(function, _STORING_MARK, True)


# -- attributes of run-time objects --------------------------------------------
def rewrite_query(mode):
    """The query of rewrites ``mode`` was made with (a ``RewriteDatabaseQuery``,
    PyTensor's ``Mode.provided_optimizer``), or None where it is not found."""
    query = getattr(mode, "provided_optimizer", None)
    return query if isinstance(getattr(query, "extra_rewrites", None), list) else None


def mode_with(mode, *, linker=None, query=None):
    """A mode of ``mode``'s class with its database of rewrites (``Mode.optdb``)
    and its linker and query of rewrites, or the ``linker`` and ``query``
    given; None where these are not found."""
    database = getattr(mode, "optdb", None)
    query = rewrite_query(mode) if query is None else query
    if database is None or query is None:
        return None
    return type(mode)(
        linker=mode.linker if linker is None else linker, optimizer=query, db=database
    )


def linker_as(linker, cls):
    """A ``cls`` (a subclass of ``linker``'s class) with ``linker``'s settings,
    or None where they are not all in its instance dictionary."""
    state = getattr(linker, "__dict__", None)
    if state is None or _slots(type(linker)):
        return None
    new = cls.__new__(cls)
    new.__dict__.update(state)
    return new


def _slots(cls) -> list[str]:
    """The names ``cls`` and its bases keep in slots, outside the instance dictionary."""
    names = []
    for klass in cls.__mro__:
        declared = vars(klass).get("__slots__", ())
        names += [declared] if isinstance(declared, str) else list(declared)
    return [name for name in names if name not in ("__dict__", "__weakref__")]


def _maker_part(function, name: str):
    return getattr(getattr(function, "maker", None), name, None)


def input_specs(function) -> list | None:
    """The ``In`` specifications of a compiled ``function``'s inputs, shared
    variables included (``Function.maker.inputs``), or None."""
    specs = _maker_part(function, "inputs")
    return list(specs) if isinstance(specs, list | tuple) else None


def output_specs(function) -> list | None:
    """The ``Out`` specifications of a compiled ``function``'s outputs
    (``Function.maker.outputs``), or None."""
    specs = _maker_part(function, "outputs")
    return list(specs) if isinstance(specs, list | tuple) else None


def compiled_graph(function):
    """The rewritten graph a compiled ``function`` runs (``Function.maker.fgraph``), or None."""
    fgraph = _maker_part(function, "fgraph")
    return fgraph if hasattr(fgraph, "inputs") and hasattr(fgraph, "outputs") else None


def input_cells(function) -> list | None:
    """The one-element lists that hold a compiled ``function``'s input values,
    in the order of :func:`input_specs` (``container.storage`` of each of
    ``Function.input_storage``), or None. PyTensor replaces the value in the
    list, never the list."""
    containers = getattr(function, "input_storage", None)
    if not isinstance(containers, list | tuple):
        return None
    cells = [getattr(container, "storage", None) for container in containers]
    return cells if all(isinstance(cell, list) and cell for cell in cells) else None


def set_unpack_single(function, single: bool) -> bool:
    """Have a compiled ``function`` with one output return it unpacked
    (``single``) or in a list (``Function.unpack_single``); whether that was done."""
    if not isinstance(getattr(function, "unpack_single", None), bool):
        return False
    function.unpack_single = bool(single)
    return True


def fix_node_order(fgraph, order) -> bool:
    """Make ``fgraph`` list its nodes in ``order`` (a valid order of all its
    nodes) from now on, by replacing its ``toposort`` method on this graph
    only; whether that was done.

    PyTensor's Numba cache key of a graph follows its node order, and a
    graph rebuilt from a stored one can order independent nodes differently.
    """
    if not callable(getattr(type(fgraph), "toposort", None)):
        return False
    try:
        fgraph.toposort = _NodeOrder(tuple(order))
    except AttributeError:  # no instance dictionary
        return False
    return True


class _NodeOrder:
    """A graph's ``toposort`` replaced by :func:`fix_node_order` (a class, not
    a closure, so that the graph can still be copied and pickled)."""

    def __init__(self, order: tuple) -> None:
        self.order = order

    def __call__(self) -> list:
        return list(self.order)


def compiled_dispatcher(function):
    """The Numba dispatcher that runs a PyTensor ``Function`` built by a Numba
    linker, or None where it is not found.

    PyTensor's JIT linkers keep it as ``jit_fn`` on the function's single
    thunk (``function.vm``). :mod:`pylearn_vae.speedups.precompile` compiles it
    for a known signature in another process, which only fills Numba's disk
    cache; without it that is skipped and the process compiles as usual.
    """
    dispatcher = getattr(getattr(function, "vm", None), "jit_fn", None)
    return dispatcher if callable(getattr(dispatcher, "compile", None)) else None


def vm_input_cells(function) -> list | None:
    """The one-element lists from which a Numba-compiled ``function``'s
    dispatcher takes its arguments, in the order of the graph's inputs
    (``Function.vm.inputs``), or None."""
    cells = getattr(getattr(function, "vm", None), "inputs", None)
    if not isinstance(cells, list | tuple):
        return None
    return list(cells) if all(isinstance(cell, list) and cell for cell in cells) else None


def numba_cache_reader(dispatcher):
    """``cached(signature)``: whether Numba's disk cache holds ``dispatcher``'s
    code for ``signature``, read the way the dispatcher does before it
    compiles (``Dispatcher._cache.load_overload`` with its
    ``targetctx``); None where these are not found."""
    load = getattr(getattr(dispatcher, "_cache", None), "load_overload", None)
    context = getattr(dispatcher, "targetctx", None)
    if not callable(load) or context is None:
        return None

    def cached(signature) -> bool:
        try:
            return load(signature, context) is not None
        except Exception:  # an unreadable entry: Numba would compile anew
            return False

    return cached


def in_numba_cache(dispatcher, signature) -> bool:
    """Whether Numba's disk cache already holds ``dispatcher``'s code for
    ``signature`` (False where that cannot be told). Where it does,
    compiling it in another process would only cost that process's start."""
    cached = numba_cache_reader(dispatcher)
    return cached is not None and cached(signature)


def value_cell(variable) -> list | None:
    """The one-element list holding shared ``variable``'s value
    (``SharedVariable.container.storage``), or None."""
    cell = getattr(getattr(variable, "container", None), "storage", None)
    return cell if isinstance(cell, list) and cell else None
