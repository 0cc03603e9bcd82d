"""Every private name of PyTensor, Numba, NumPy and llvmlite the package uses
is named in :mod:`pylearn_vae.speedups.internals`, is where it is expected in
the installed versions, and, where it is gone, only the speed-up that needs
it turns off.

* Each entry of the module's tables resolves (or holds) here; when a
  supported PyTensor or Numba moves one, its test fails, naming the entry
  and the speed-ups that would turn off.
* For each speed-up, the name is taken away (its entry points elsewhere, or
  its accessor finds nothing): the package still compiles and gives the
  numbers it gives with the speed-up, which is then off.
* No other module of the package imports a private module or name of these
  libraries, or reads one of the run-time attributes the accessors read
  (checked in the source, with ``ast``).
"""

from __future__ import annotations

import ast
import inspect
import re
import warnings
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from packaging.version import Version
from pytensor.compile import Function
from pytensor.compile.mode import Mode, get_mode
from pytensor.graph.fg import FunctionGraph

import pylearn_vae
from pylearn_vae import speedups
from pylearn_vae.compile import function, resolve_mode
from pylearn_vae.errors import SpeedupsUnavailableWarning
from pylearn_vae.ops.im2col import Im2Col
from pylearn_vae.speedups import (
    c_loops,
    graph_cache,
    internals,
    numba_im2col,
    precompile,
    support,
    vecops,
)
from pylearn_vae.speedups.checked import CheckedOnce

# Tests of the speed machinery itself: skipped when PYLEARN_VAE_SPEEDUPS=0 turns it off.
pytestmark = pytest.mark.speedups

F32 = np.float32


def _speedups(names) -> str:
    return "; ".join(internals.SPEEDUPS[name] for name in names)


def _versions() -> str:
    import numba

    return f"PyTensor {pytensor.__version__}, Numba {numba.__version__}"


# -- (a) every entry is where it is expected ----------------------------------
def test_the_tables_name_only_known_speedups_and_functions():
    for table in (internals.REQUIRED, internals.CHECKS, internals.ATTRIBUTES):
        for name, entry in table.items():
            unknown = set(entry.speedups) - set(internals.SPEEDUPS)
            assert not unknown, f"{name}: unknown speed-ups {unknown}"
    for what, check in internals.CHECKS.items():
        assert callable(getattr(internals, check.function, None)), what
    for name, attribute in internals.ATTRIBUTES.items():
        assert callable(getattr(internals, attribute.accessor, None)), name


@pytest.mark.parametrize("name", sorted(internals.REQUIRED))
def test_each_name_is_where_the_speedups_expect_it(name):
    entry = internals.REQUIRED[name]
    assert internals.find(name) is not None, (
        f"{entry.path} (internals.REQUIRED[{name!r}]) has moved in {_versions()}: "
        f"without it these speed-ups turn off: {_speedups(entry.speedups)}"
    )


@pytest.mark.parametrize("what", sorted(internals.CHECKS))
def test_each_check_holds(what):
    check = internals.CHECKS[what]
    assert getattr(internals, check.function)(), (
        f"{what} (internals.CHECKS, {check.function}) no longer holds in {_versions()}: "
        f"without it these speed-ups turn off: {_speedups(check.speedups)}"
    )


def test_nothing_is_missing():
    assert internals.missing() == []
    assert all(internals.usable(name) for name in internals.SPEEDUPS)
    with pytest.raises(KeyError, match="no speed-up called 'fast'"):
        internals.usable("fast")


def test_the_scalar_calling_convention_is_known_for_this_pytensor():
    """PyTensor 3.0 wraps an elementwise loop's scalar function in a storing
    function; 3.3 calls it directly (and outside loops too). The fused loops
    choose their calling convention from this; a PyTensor the project has not
    seen must be looked at before it is added to setup.cfg's range."""
    version = Version(pytensor.__version__)
    wrapped = internals.core_calls_through_storing_wrapper()
    if version < Version("3.1"):
        assert wrapped
    elif version >= Version("3.3"):
        assert not wrapped


@pytest.fixture(scope="module")
def numba_step():
    """A PyTensor function built by the Numba linker (the speed-ups' mode),
    called once; its shared variable, and its input and output."""
    w = pytensor.shared(np.linspace(-1, 1, 4, dtype=F32), name="w")
    x = pt.vector("x", dtype="float32", shape=(4,))
    out = (pt.exp(x) * w).sum()
    fn = pytensor.function([x], out, updates=[(w, w * F32(0.5) + x)], mode=resolve_mode("NUMBA"))
    fn(np.zeros(4, dtype=F32))
    return fn, w


def _storing_mark_is_read() -> bool:
    if not internals.core_calls_through_storing_wrapper():
        return True  # (this PyTensor calls the scalar function directly)
    module, attribute = internals._STORING_WRAPPER
    wrapper = getattr(__import__(module, fromlist=[attribute]), attribute)
    return internals._STORING_MARK in inspect.getsource(wrapper)


def _node_order_is_fixed() -> bool:
    x = pt.vector("x", dtype="float32")
    fgraph = FunctionGraph([x], [pt.exp(x) + pt.log(x)], clone=False)
    order = list(reversed(fgraph.toposort()))  # (not a valid order: only its use is seen)
    return internals.fix_node_order(fgraph, order) and fgraph.toposort() == order


#: For each entry of internals.ATTRIBUTES: its accessor on real objects,
#: given the compiled Numba function and its shared variable.
READERS = {
    "Mode.provided_optimizer": lambda fn, w: internals.rewrite_query(resolve_mode("NUMBA")),
    "Mode.optdb": lambda fn, w: internals.mode_with(get_mode("NUMBA")),
    "Linker.__dict__ (a linker's settings)": lambda fn, w: internals.linker_as(
        get_mode("NUMBA").linker, internals.get("NumbaLinker")
    ),
    "Function.maker.inputs": lambda fn, w: internals.input_specs(fn),
    "Function.maker.outputs": lambda fn, w: internals.output_specs(fn),
    "Function.maker.fgraph": lambda fn, w: internals.compiled_graph(fn),
    "Function.input_storage[k].storage": lambda fn, w: internals.input_cells(fn),
    "Function.unpack_single": lambda fn, w: internals.set_unpack_single(fn, True),
    "FunctionGraph.toposort (replaced on one graph)": lambda fn, w: _node_order_is_fixed(),
    "Function.vm.jit_fn": lambda fn, w: internals.compiled_dispatcher(fn),
    "Function.vm.inputs": lambda fn, w: internals.vm_input_cells(fn),
    "Dispatcher._cache.load_overload, Dispatcher.targetctx": lambda fn, w: (
        internals.numba_cache_reader(internals.compiled_dispatcher(fn))
    ),
    "SharedVariable.container.storage": lambda fn, w: (
        internals.value_cell(w)[0] is w.get_value(borrow=True)
    ),
    "handles_out (on an elementwise loop's scalar function, PyTensor 3.0-3.2)": (
        lambda fn, w: _storing_mark_is_read()
    ),
}


def test_every_run_time_attribute_has_a_reader():
    assert set(READERS) == set(internals.ATTRIBUTES)


@pytest.mark.compiles
@pytest.mark.parametrize("name", sorted(internals.ATTRIBUTES))
def test_each_run_time_attribute_is_where_its_accessor_reads_it(name, numba_step):
    entry = internals.ATTRIBUTES[name]
    found = READERS[name](*numba_step)
    assert found is not None and found is not False, (
        f"{name} (internals.ATTRIBUTES, read by internals.{entry.accessor}) is not found "
        f"in {_versions()}: without it these speed-ups turn off: {_speedups(entry.speedups)}"
    )


@pytest.mark.compiles
def test_the_accessors_find_what_they_read(numba_step):
    fn, w = numba_step
    specs, cells = internals.input_specs(fn), internals.input_cells(fn)
    assert len(specs) == len(cells) == 2
    assert [spec.variable for spec in specs][1] is w
    assert cells[1][0] is w.get_value(borrow=True)
    fgraph = internals.compiled_graph(fn)
    assert len(internals.vm_input_cells(fn)) == len(fgraph.inputs)
    assert [spec.borrow for spec in internals.output_specs(fn)] == [False]
    mode = resolve_mode("NUMBA")
    assert internals.mode_with(mode).linker is mode.linker
    assert internals.rewrite_query(internals.mode_with(mode)) is internals.rewrite_query(mode)


# -- (b) a name taken away turns off its speed-up, not the package ----------------
@pytest.fixture(autouse=True)
def checks_made_anew():
    """The checks internals remembers are made again after each test (one
    made while a name was taken away must not outlive the test)."""
    cached = [internals.rewrite_positions_hold, internals.elemwise_c_parts_available]
    for check in cached:
        check.cache_clear()
    yield
    for check in cached:
        check.cache_clear()


def _moved(monkeypatch, name: str) -> str:
    """Point ``REQUIRED[name]`` where nothing is (as a PyTensor that moved it);
    the path now named."""
    entry = internals.REQUIRED[name]
    moved = entry._replace(attribute=f"{entry.attribute}_moved")
    monkeypatch.setitem(internals.REQUIRED, name, moved)
    return moved.path


def _gone(monkeypatch, accessor: str, value=None) -> None:
    """Have ``internals.<accessor>`` find nothing."""
    monkeypatch.setattr(internals, accessor, lambda *args, **kwargs: value)


@pytest.fixture
def undecided(monkeypatch):
    """A process that has not yet decided on the Numba speed-ups (nor
    reported any other speed-up missing), whose probe passed before."""
    monkeypatch.setattr(support, "_DECISION", support._Decision())
    monkeypatch.setattr(support, "_REPORTED", set())
    monkeypatch.delenv(support.ENV_VARIABLE, raising=False)
    monkeypatch.setattr(support, "_BackgroundProbe", None)  # (never started here)
    monkeypatch.setattr(support, "probe_marker", lambda: _PASSED)


class _Passed:
    """A probe marker that exists: the probe passed earlier."""

    def exists(self) -> bool:
        return True


_PASSED = _Passed()

_NUMBA_ENTRIES = sorted(n for n, e in internals.REQUIRED.items() if "numba" in e.speedups)
_NUMBA_CHECKS = sorted(w for w, c in internals.CHECKS.items() if "numba" in c.speedups)


@pytest.mark.speedups
@pytest.mark.parametrize("name", _NUMBA_ENTRIES)
def test_a_moved_numba_name_turns_the_numba_speedups_off_with_one_warning(
    name, monkeypatch, undecided
):
    path = _moved(monkeypatch, name)
    with pytest.warns(SpeedupsUnavailableWarning, match=f"lacks .*{re.escape(path)}") as caught:
        assert not support.speedups_enabled()
        mode = resolve_mode("NUMBA")
        resolve_mode("NUMBA")
    assert len(caught) == 1
    assert not support.uses_speedups(mode) and mode.linker is get_mode("NUMBA").linker


@pytest.mark.speedups
@pytest.mark.parametrize("what", _NUMBA_CHECKS)
def test_a_failed_numba_check_turns_the_numba_speedups_off(what, monkeypatch, undecided):
    _gone(monkeypatch, internals.CHECKS[what].function, False)
    with pytest.warns(SpeedupsUnavailableWarning, match="lacks"):
        assert not support.speedups_enabled()
    assert not support.uses_speedups(resolve_mode("NUMBA"))


@pytest.mark.speedups
@pytest.mark.compiles
def test_without_the_numba_speedups_a_graph_computes_the_same(monkeypatch, undecided):
    _moved(monkeypatch, "numba_funcify")
    x = pt.vector("x", dtype="float32")
    expr = pt.softplus(x) * F32(2) + pt.sigmoid(x)
    with pytest.warns(SpeedupsUnavailableWarning):
        fn = function([x], expr, mode="NUMBA")
    assert not support.uses_speedups(support.innermost(fn).maker.mode)
    xv = np.linspace(-4, 4, 9, dtype=F32)
    xd = xv.astype(np.float64)
    np.testing.assert_allclose(
        fn(xv), np.logaddexp(0, xd) * 2 + 1 / (1 + np.exp(-xd)), rtol=1e-6, atol=1e-6
    )


@pytest.mark.speedups
def test_a_mode_whose_parts_are_not_found_keeps_pytensors_own_code(monkeypatch):
    _gone(monkeypatch, "mode_with")
    plain = get_mode("NUMBA")
    assert support.speedup_mode(plain) is plain
    _gone(monkeypatch, "linker_as")
    assert support.speedup_mode(plain) is plain


def test_without_numbas_error_class_no_failure_is_taken_for_numbas(monkeypatch):
    from numba.core.errors import TypingError

    assert support._is_numba_failure(TypingError("x"))
    _moved(monkeypatch, "NumbaError")
    assert not support._is_numba_failure(TypingError("x"))


def test_a_first_call_that_cannot_be_undone_waits_for_the_probe(monkeypatch, undecided):
    """Where a compiled function's inputs are not found, its first call is
    not made before the probe's verdict (a bad verdict could not undo it)."""
    calls = []

    class FailingProbe:
        def verdict(self):
            return "the probe says no"

        def cancel(self):
            pass

    support._DECISION.enabled, support._DECISION.pending = True, FailingProbe()

    def fast(value):
        calls.append("fast")
        return value + 1

    def plain(value):
        calls.append("plain")
        return value + 1

    assert internals.input_specs(fast) is None  # (a Python function has no maker)
    with pytest.warns(SpeedupsUnavailableWarning, match="the probe says no"):
        assert support.FallbackOnFirstCall(fast, lambda: plain)(1) == 2
    assert calls == ["plain"]


@pytest.mark.speedups
@pytest.mark.compiles
def test_without_the_patch_loops_numba_runs_the_operations_own_code(monkeypatch, undecided):
    """``register()`` skips the loops (with one warning) where a name they
    need has moved; PyTensor's Numba backend then runs the operation's
    ``perform``, which gives what the loops give."""
    path = _moved(monkeypatch, "register_funcify_default_op_cache_key")
    monkeypatch.setattr(numba_im2col, "_REGISTERED", [])
    with pytest.warns(SpeedupsUnavailableWarning, match=re.escape(path)):
        assert not numba_im2col.register()
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        assert not numba_im2col.register()  # decided once, warned once
    assert again == []
    x = pt.tensor("x", dtype="float32", shape=(2, 4, 5, 3))
    patches = Im2Col((4, 5), (2, 3), (1, 2), (1, 0))(x)
    xv = np.arange(2 * 4 * 5 * 3, dtype=F32).reshape(2, 4, 5, 3)
    looped = pytensor.function([x], patches, mode=resolve_mode("NUMBA"))(xv)
    performed = pytensor.function([x], patches, mode=Mode(linker="py", optimizer=None))(xv)
    np.testing.assert_array_equal(looped, performed)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(graph_cache, "_cache_dir", lambda: tmp_path)
    monkeypatch.setenv("PYLEARN_VAE_GRAPH_CACHE", "1")
    return tmp_path


QUARTER, HALF = F32(0.25), F32(0.5)


def _cached_step(value=QUARTER):
    """A function through the graph cache; its shared variable."""
    w = pytensor.shared(np.full(3, 2, dtype=F32), name="w")
    x = pt.vector("x", dtype="float32")
    out = (pt.exp(x) * w).sum() * value
    return graph_cache.cached_function([x], out, [(w, w + x)], resolve_mode("NUMBA")), w


def _check_step(step, w, value=QUARTER) -> None:
    xv = np.array([0.0, 1.0, -1.0], dtype=F32)
    for _ in range(2):
        expected = float((np.exp(xv.astype(np.float64)) * w.get_value()).sum() * value)
        assert float(step(xv)) == pytest.approx(expected, rel=1e-6)
    np.testing.assert_array_equal(w.get_value(), np.full(3, 2, dtype=F32) + 2 * xv)


_CACHE = "cache of rewritten graphs"

#: What is taken away -> how, and the warnings it gives (a name: one per
#: speed-up that needs it; an attribute of one function: none, that
#: function is just not cached).
_CACHE_SABOTAGE = {
    "FunctionMaker moved": (lambda mp: _moved(mp, "FunctionMaker"), [_CACHE]),
    "no_fgraph_prep gone": (
        lambda mp: _gone(mp, "function_maker_takes_a_graph", False),
        [_CACHE],
    ),
    "the mode's query not found": (
        lambda mp: _gone(mp, "rewrite_query"),
        ["Numba speed-ups are off", _CACHE],  # (the check on PyTensor's NUMBA mode)
    ),
    "the compiled graph not found": (lambda mp: _gone(mp, "compiled_graph"), []),
    "the input specifications not found": (lambda mp: _gone(mp, "input_specs"), []),
}


@pytest.mark.speedups
@pytest.mark.compiles
@pytest.mark.parametrize("sabotage", sorted(_CACHE_SABOTAGE))
def test_without_the_graph_cache_functions_compile_the_ordinary_way(
    sabotage, cache_dir, monkeypatch, undecided
):
    take_away, warned = _CACHE_SABOTAGE[sabotage]
    take_away(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        step, w = _cached_step()
    assert isinstance(step, Function)
    assert list(cache_dir.iterdir()) == []  # nothing stored
    _check_step(step, w)
    reported = [str(c.message) for c in caught if c.category is SpeedupsUnavailableWarning]
    assert len(reported) == len(warned)
    for fragment in warned:
        assert any(fragment in message for message in reported), (fragment, reported)


@pytest.mark.speedups
@pytest.mark.compiles
@pytest.mark.parametrize("accessor", ["fix_node_order", "set_unpack_single"])
def test_an_entry_that_cannot_be_loaded_is_compiled_again(accessor, cache_dir, monkeypatch):
    _cached_step(HALF)
    assert len(list(cache_dir.iterdir())) == 1
    loads = []
    original = graph_cache._load
    monkeypatch.setattr(graph_cache, "_load", lambda *a: loads.append(1) or original(*a))
    _gone(monkeypatch, accessor, False)
    step, w = _cached_step(HALF)
    assert loads == [1] and isinstance(step, Function)  # tried, then compiled
    _check_step(step, w, HALF)


@pytest.mark.speedups
@pytest.mark.compiles
@pytest.mark.parametrize(
    "accessor", ["compiled_dispatcher", "vm_input_cells", "input_specs", "compiled_graph"]
)
def test_without_the_dispatcher_the_code_compiles_at_the_first_call(
    accessor, numba_step, monkeypatch
):
    fn, _ = numba_step
    started = []
    monkeypatch.setattr(support, "start_helper", lambda *a, **k: started.append(a))
    _gone(monkeypatch, accessor)
    assert not precompile.compile_here(fn)
    assert precompile.compile_elsewhere(fn, Path("unused.pkl"), [], [], True) is fn
    assert started == []


@pytest.mark.speedups
@pytest.mark.compiles
def test_without_numbas_cache_reader_the_second_process_still_compiles(monkeypatch):
    """Unable to tell whether Numba has the code already, the second process
    is started anyway (at worst it loads the code from the cache)."""
    x = pt.vector("x", dtype="float32")
    fn = pytensor.function([x], pt.exp(x).sum(), mode=resolve_mode("NUMBA"))
    started = []
    monkeypatch.setattr(support, "start_helper", lambda *a, **k: started.append(a))
    _gone(monkeypatch, "numba_cache_reader")
    assert not internals.in_numba_cache(internals.compiled_dispatcher(fn), ())
    assert precompile.compile_elsewhere(fn, Path("unused.pkl"), [x], [], True) is fn
    assert len(started) == 1  # (start_helper returned None: no process, fn itself)


@pytest.mark.speedups
@pytest.mark.compiles
@pytest.mark.parametrize("accessor", ["input_cells", "input_specs"])
def test_without_the_input_cells_every_call_is_checked(accessor, numba_step, monkeypatch):
    fn, w = numba_step
    _gone(monkeypatch, accessor)
    wrapped = CheckedOnce(fn)
    start = w.get_value()
    xv = np.arange(4, dtype=F32)
    for _ in range(3):
        expected = float((np.exp(xv.astype(np.float64)) * w.get_value()).sum())
        assert float(wrapped(xv)) == pytest.approx(expected, rel=1e-6)
        assert wrapped._inner is None  # never trusted
    ref = start
    for _ in range(3):
        ref = ref * F32(0.5) + xv
    np.testing.assert_allclose(w.get_value(), ref)


def _c_graph():
    x = pt.matrix("x", dtype="float32")
    y = pt.matrix("y", dtype="float32")
    return [x, y], pt.exp(x) * y + pt.softplus(y), (pt.sigmoid(x) * y).sum(axis=1)


def _c_reference(xv, yv):
    xd, yd = xv.astype(np.float64), yv.astype(np.float64)
    return [np.exp(xd) * yd + np.logaddexp(0, yd), (yd / (1 + np.exp(-xd))).sum(axis=1)]


_C_SABOTAGE = {
    "rewrite positions moved": ("rewrite_positions_hold", {vecops._Vectorised}),
    "Elemwise._c_all gone": ("elemwise_c_parts_available", set()),
}


@pytest.mark.speedups
@pytest.mark.compiles
@pytest.mark.parametrize("sabotage", sorted(_C_SABOTAGE))
def test_without_the_c_rewrites_pytensors_own_c_code_runs(sabotage, monkeypatch):
    accessor, also_gone = _C_SABOTAGE[sabotage]
    _gone(monkeypatch, accessor, False)
    inputs, *outputs = _c_graph()
    fn = pytensor.function(inputs, outputs, mode=resolve_mode("CVM"))
    nodes = fn.maker.fgraph.apply_nodes
    assert not any(isinstance(n.op, c_loops.VectorisedElemwise) for n in nodes)
    scalar_ops = [getattr(n.op, "scalar_op", None) for n in nodes]
    for kind in also_gone:
        assert not any(isinstance(op, kind) for op in scalar_ops)
    rng = np.random.default_rng(0)
    xv, yv = (rng.standard_normal((3, 5), dtype=F32) for _ in range(2))
    for got, want in zip(fn(xv, yv), _c_reference(xv, yv), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


def test_an_elemwise_subclass_keeps_pytensors_c_code_where_its_parts_are_gone(monkeypatch):
    _gone(monkeypatch, "elemwise_c_parts_available", False)

    class Subclass(pt.elemwise.Elemwise):
        pass

    before = dict(vars(Subclass))
    assert not internals.extend_elemwise_c_parts(Subclass, lambda *args: None)
    assert dict(vars(Subclass)) == before


@pytest.mark.jax
@pytest.mark.speedups
def test_without_the_value_cell_a_shared_value_stays_on_the_host(monkeypatch):
    jax_mode = get_mode("JAX")
    w = pytensor.shared(np.ones(3, dtype=F32), name="w")
    _gone(monkeypatch, "value_cell")
    speedups.keep_on_device(w, jax_mode)
    assert type(w.get_value(borrow=True)) is np.ndarray
    monkeypatch.undo()
    speedups.keep_on_device(w, jax_mode)
    assert type(w.get_value(borrow=True)) is not np.ndarray  # a device array
    np.testing.assert_array_equal(np.asarray(w.get_value()), np.ones(3, dtype=F32))


# -- (c) no private name anywhere else ------------------------------------------
PACKAGE = Path(pylearn_vae.__file__).resolve().parent
HOME = PACKAGE / "speedups" / "internals.py"
LIBRARIES = ("pytensor", "numba", "numpy", "llvmlite")

#: Module paths of these libraries that are theirs alone (besides every path
#: with a ``_`` component): the Numba backend, PyTensor's function-building
#: machinery, Numba's and NumPy's cores.
INTERNAL_MODULES = (
    "pytensor.link.numba",
    "pytensor.link.vm",
    "pytensor.link.utils",
    "pytensor.compile.maker",
    "pytensor.compile.executor",
    "numba.core",
    "numba.np",
    "numba.cpython",
    "numba.misc",
    "numpy.core",
)

#: Attributes of run-time objects that only the accessors of internals read
#: or set (ATTRIBUTES), also as getattr/setattr strings and method names.
RUN_TIME_ATTRIBUTES = frozenset(
    {
        "vm",
        "jit_fn",
        "maker",
        "input_storage",
        "output_storage",
        "provided_optimizer",
        "optdb",
        "targetctx",
        "load_overload",
        "unpack_single",
        "handles_out",
        "__position__",
        "_c_all",
        "_cache",
    }
)


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def is_internal(path: str) -> bool:
    """Whether dotted ``path`` names a private module or name of the libraries."""
    parts = path.split(".")
    if parts[0] not in LIBRARIES:
        return False
    if any(_is_private(part) for part in parts):
        return True
    return any(path == m or path.startswith(m + ".") for m in INTERNAL_MODULES)


def _dotted(node) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _is_import_module(node) -> bool:
    return isinstance(node, ast.Call) and _dotted(node.func) in (
        "importlib.import_module",
        "import_module",
        "__import__",
    )


def _module_text(node) -> str | None:
    """The module a call to ``import_module`` names: a constant, or the
    constant start of an f-string."""
    if not node.args:
        return None
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values:
        first = arg.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


def private_uses(source: str) -> list[str]:
    """Where ``source`` imports or reads a private module, name or run-time
    attribute of PyTensor, Numba, NumPy or llvmlite."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    aliases: dict[str, str] = {}  # local name -> what it names in the libraries
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if is_internal(alias.name):
                    found.append((node.lineno, f"import {alias.name}"))
                root = alias.name.split(".")[0]
                if root in LIBRARIES:
                    aliases[alias.asname or root] = alias.name if alias.asname else root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.split(".")[0] not in LIBRARIES:
                continue
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if is_internal(full):
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
                aliases[alias.asname or alias.name] = full
    # The links inside a chain ``a.b.c`` (``a.b``): the chain is judged whole.
    inner = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr in RUN_TIME_ATTRIBUTES:
                found.append((node.lineno, f".{node.attr}"))
            elif node.attr == "storage" and getattr(node.value, "attr", None) == "container":
                found.append((node.lineno, ".container.storage"))
            elif node.attr == "toposort" and isinstance(node.ctx, ast.Store):
                found.append((node.lineno, ".toposort = (replaced)"))
            elif _is_import_module(node.value) and _is_private(node.attr):
                found.append((node.lineno, f"importlib.import_module(...).{node.attr}"))
            elif id(node) not in inner:
                dotted = _dotted(node)
                root, _, rest = (dotted or "").partition(".")
                if root in aliases and is_internal(f"{aliases[root]}.{rest}"):
                    found.append((node.lineno, f"{dotted} ({aliases[root]}.{rest})"))
        elif isinstance(node, ast.Call):
            if _is_import_module(node):
                module = _module_text(node)
                if module and is_internal(module.rstrip(".")):
                    found.append((node.lineno, f"importlib.import_module({module!r})"))
            elif _dotted(node.func) in ("getattr", "setattr", "hasattr", "delattr"):
                name = node.args[1] if len(node.args) > 1 else None
                if isinstance(name, ast.Constant) and name.value in RUN_TIME_ATTRIBUTES:
                    found.append((node.lineno, f"{_dotted(node.func)}(..., {name.value!r})"))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name in RUN_TIME_ATTRIBUTES:
                found.append((node.lineno, f"def {node.name} (overrides a private method)"))
    return [f"line {line}: {what}" for line, what in sorted(set(found))]


def _package_uses() -> dict[str, list[str]]:
    uses = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == HOME:
            continue
        found = private_uses(path.read_text(encoding="utf-8"))
        if found:
            uses[path.relative_to(PACKAGE).as_posix()] = found
    return uses


def _without_lines(uses: list[str]) -> set[str]:
    return {use.split(": ", 1)[1] for use in uses}


def test_no_other_module_uses_a_private_name_of_the_libraries():
    uses = _package_uses()
    assert uses == {}, (
        "name these in pylearn_vae/speedups/internals.py (REQUIRED, CHECKS or "
        f"ATTRIBUTES, with an accessor and a fallback) and use them from there: {uses}"
    )


def test_the_restricted_unpickler_is_scanned_with_no_exception():
    """The restricted unpickler names NumPy's pickle paths only as the strings
    a stream spells; it resolves them to its own code, so it is scanned like
    every other module and what it used to do would be reported."""
    path = PACKAGE / "persistence" / "safe_pickle.py"
    assert path in set(PACKAGE.rglob("*.py")) and path != HOME
    assert private_uses(path.read_text(encoding="utf-8")) == []
    before = """
import importlib

def _numpy_core(submodule):
    try:
        return importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:
        return importlib.import_module(f"numpy.core.{submodule}")

def _safe_unpickle_seed_sequence(cls, checksum, state):
    real = importlib.import_module("numpy.random.bit_generator").__pyx_unpickle_SeedSequence
    return real(cls, checksum, state)
"""
    assert _without_lines(private_uses(before)) == {
        "importlib.import_module('numpy._core.')",
        "importlib.import_module('numpy.core.')",
        "importlib.import_module(...).__pyx_unpickle_SeedSequence",
    }


def test_the_source_check_can_fail():
    sabotage = """
import numba.core.errors
import numpy as np
import pytensor.link.numba.dispatch.basic as numba_basic
from pytensor.link.numba.dispatch.basic import numba_njit
from pytensor.compile.maker import FunctionMaker
from numba import core
from pytensor.tensor.elemwise import Elemwise
import importlib

class Loops(Elemwise):
    def _c_all(self, node, name, inames, onames, sub):
        return super()._c_all(node, name, inames, onames, sub)

def f(fn, mode, var, fgraph, order):
    np._core.umath
    fn.vm.jit_fn.compile(())
    fn.maker.fgraph
    getattr(fn, "maker", None)
    mode.provided_optimizer.extra_rewrites
    var.container.storage[0] = 1
    fgraph.toposort = lambda: order
    importlib.import_module(f"numpy._core.{order}")
    importlib.import_module("numpy.random.bit_generator").__pyx_unpickle_SeedSequence
    return core.errors
"""
    found = _without_lines(private_uses(sabotage))
    assert found == {
        "import numba.core.errors",
        "import pytensor.link.numba.dispatch.basic",
        "from pytensor.link.numba.dispatch.basic import numba_njit",
        "from pytensor.compile.maker import FunctionMaker",
        "from numba import core",
        "def _c_all (overrides a private method)",
        "._c_all",
        "np._core.umath (numpy._core.umath)",
        ".vm",
        ".jit_fn",
        ".maker",
        "getattr(..., 'maker')",
        ".provided_optimizer",
        ".container.storage",
        ".toposort = (replaced)",
        "importlib.import_module('numpy._core.')",
        "importlib.import_module(...).__pyx_unpickle_SeedSequence",
        "core.errors (numba.core.errors)",
    }, found
    # Public names and the package's own private names are not reported.
    fine = """
import numpy as np
import pytensor
from pytensor.compile.mode import get_mode
from pytensor.link.jax.dispatch import jax_funcify
from numba.extending import intrinsic
from llvmlite import ir

class Thing:
    def _helper(self):
        return self._state

def f(fgraph, x):
    np.lib.stride_tricks.as_strided(x, (1,), (0,))
    pytensor.config.numba__cache
    fgraph.toposort()
    return get_mode("NUMBA").linker, jax_funcify, intrinsic, ir.IntType(32)
"""
    assert private_uses(fine) == []
