"""The PyTensor internals the Numba speed-ups use, named in this one place.

The speed-ups in :mod:`pylearn_vae.ops` hook into PyTensor's Numba backend
through its dispatch registry and its cache helpers. These are not a
documented, versioned API, so every name is resolved here, with
:func:`missing` telling which ones a given PyTensor lacks; the speed-ups
are then turned off (see :mod:`pylearn_vae.ops.support`) and PyTensor's own
code runs instead. ``tests/ops/test_internals.py`` fails loudly when a name
moves in a PyTensor the project supports.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any

__all__ = [
    "REQUIRED",
    "missing",
    "get",
    "core_calls_through_storing_wrapper",
    "compiled_dispatcher",
    "in_numba_cache",
    "ELEMWISE_C_PARTS",
    "elemwise_c_parts_available",
]

#: Short name -> (module, attribute) of each internal the speed-ups use.
REQUIRED: dict[str, tuple[str, str]] = {
    # The Numba backend's dispatch: one function per Op, and a cache key for it.
    "numba_funcify": ("pytensor.link.numba.dispatch.basic", "numba_funcify"),
    "numba_funcify_and_cache_key": (
        "pytensor.link.numba.dispatch.basic",
        "numba_funcify_and_cache_key",
    ),
    "register_funcify_and_cache_key": (
        "pytensor.link.numba.dispatch.basic",
        "register_funcify_and_cache_key",
    ),
    "numba_njit": ("pytensor.link.numba.dispatch.basic", "numba_njit"),
    # Compiles generated source so that Numba can cache it on disk.
    "compile_numba_function_src": ("pytensor.link.numba.cache", "compile_numba_function_src"),
    "NumbaLinker": ("pytensor.link.numba.linker", "NumbaLinker"),
    # The graph cache builds functions from already rewritten graphs.
    "FunctionMaker": ("pytensor.compile.maker", "FunctionMaker"),
}

#: PyTensor 3.0-3.2 call an elementwise loop's scalar function through a
#: generated wrapper that stores its results (this function); later versions
#: call it directly. Only its presence is looked at.
_STORING_WRAPPER = ("pytensor.link.numba.dispatch.vectorize_codegen", "store_core_outputs")


def _resolve(module: str, attribute: str) -> Any:
    return getattr(importlib.import_module(module), attribute)


def missing() -> list[str]:
    """The ``module.attribute`` names of :data:`REQUIRED` this PyTensor lacks."""
    absent = []
    for module, attribute in REQUIRED.values():
        try:
            _resolve(module, attribute)
        except (ImportError, AttributeError):
            absent.append(f"{module}.{attribute}")
    try:
        from pytensor.compile.maker import FunctionMaker

        if "no_fgraph_prep" not in inspect.signature(FunctionMaker.__init__).parameters:
            absent.append("pytensor.compile.maker.FunctionMaker(no_fgraph_prep=...)")
    except (ImportError, TypeError, ValueError):
        pass  # already reported above
    return absent


def get(name: str) -> Any:
    """The internal called ``name`` in :data:`REQUIRED`."""
    return _resolve(*REQUIRED[name])


def core_calls_through_storing_wrapper() -> bool:
    """Whether PyTensor's elementwise loops call a scalar function through a
    storing wrapper of their own.

    Such a wrapper is not inlined once the expression is large, which costs
    a call per element and keeps the loop scalar (measured in
    docs/performance.md); the fused loops then provide the storing function
    themselves (``handles_out``). Where PyTensor calls the scalar function
    directly it also calls it outside elementwise loops (for example on
    0-d values), where only a plain function fits.
    """
    try:
        _resolve(*_STORING_WRAPPER)
    except (ImportError, AttributeError):
        return False
    return True


#: The C backend's vectorised loops (:mod:`pylearn_vae.ops.c_loops`) wrap
#: this method of ``Elemwise``, which returns the parts of a loop's C code
#: (declarations, checks, allocation, loop, clean-up). Where it is gone they
#: are not used and PyTensor's own loops run.
ELEMWISE_C_PARTS = ("pytensor.tensor.elemwise", "Elemwise._c_all")


@functools.cache
def elemwise_c_parts_available() -> bool:
    """Whether ``Elemwise`` still builds its C code through :data:`ELEMWISE_C_PARTS`."""
    module, attribute = ELEMWISE_C_PARTS
    try:
        owner, method = attribute.split(".")
        found = getattr(_resolve(module, owner), method)
    except (ImportError, AttributeError):
        return False
    parameters = list(inspect.signature(found).parameters)
    return parameters == ["self", "node", "nodename", "inames", "onames", "sub"]


def compiled_dispatcher(function):
    """The Numba dispatcher that runs a PyTensor ``Function`` built by a Numba
    linker, or None where it is not found.

    PyTensor's JIT linkers keep it as ``jit_fn`` on the function's single
    thunk (``function.vm``). :mod:`pylearn_vae.utils.precompile` compiles it
    for a known signature in another process, which only fills Numba's disk
    cache; without it that is skipped and the process compiles as usual.
    """
    dispatcher = getattr(getattr(function, "vm", None), "jit_fn", None)
    return dispatcher if callable(getattr(dispatcher, "compile", None)) else None


def in_numba_cache(dispatcher, signature) -> bool:
    """Whether Numba's disk cache already holds ``dispatcher``'s code for
    ``signature`` (False where that cannot be told).

    Reads the cache the way a Numba dispatcher does before it compiles
    (``Dispatcher._cache.load_overload``, a Numba internal). Where the code
    is cached, compiling it in another process would only cost that
    process's start.
    """
    load = getattr(getattr(dispatcher, "_cache", None), "load_overload", None)
    context = getattr(dispatcher, "targetctx", None)
    if load is None or context is None:
        return False
    try:
        return load(signature, context) is not None
    except Exception:  # an unreadable entry: Numba would compile anew
        return False
