"""A Numba linker whose compiled graph takes its inputs one by one.

For its disk cache PyTensor wraps a compiled graph in ``def f(*args)``.
Numba packs such star arguments into one tuple at every call, and when the
tuple holds something its C dispatcher cannot type (a NumPy ``Generator``:
every graph that draws noise has one), it types the whole tuple in Python,
element by element: a sizeable share of a training step with many inputs
(measured in docs/performance.md).

:class:`PositionalNumbaLinker` builds the same cached wrapper with one named
parameter per input. Numba then types the arrays in C and only the
generators in Python. The graph's code, its cache key (plus a suffix) and
its results are unchanged.
"""

from __future__ import annotations

from pytensor import config

from pylearn_vae.speedups import internals
from pylearn_vae.speedups.source import source_version

NumbaLinker = internals.get("NumbaLinker")

__all__ = ["PositionalNumbaLinker", "positional_numba_linker"]

#: Added to PyTensor's cache key of a graph: the wrapper differs, so must its entry.
_KEY_SUFFIX = f"_positional{source_version()}"


class PositionalNumbaLinker(NumbaLinker):
    """PyTensor's Numba linker, calling the compiled graph with positional inputs."""

    def fgraph_convert(self, fgraph, **kwargs):
        if not config.numba__cache:
            return super().fgraph_convert(fgraph, **kwargs)
        graph_fn, key = internals.get("numba_funcify_and_cache_key")(fgraph, **kwargs)
        if key is None:  # not cacheable: already called with its own parameters
            return graph_fn, None
        name = graph_fn.__name__
        params = ", ".join(f"i{k}" for k in range(len(fgraph.inputs)))
        wrapper = internals.get("compile_numba_function_src")(
            src=f"def {name}({params}):\n    return graph_fn({params})\n",
            function_name=name,
            # Numba records the module of the globals with a cached function
            # and imports it when loading the function from the cache.
            global_env={"__name__": __name__, "graph_fn": graph_fn},
            cache_key=f"{key}_fastmath{int(config.numba__fastmath)}{_KEY_SUFFIX}",
        )
        return internals.get("numba_njit")(wrapper, cache=True), key


def positional_numba_linker(linker: NumbaLinker) -> PositionalNumbaLinker | None:
    """A :class:`PositionalNumbaLinker` with the settings of ``linker``, or None
    where they cannot be copied (:func:`~pylearn_vae.speedups.internals.linker_as`)."""
    if isinstance(linker, PositionalNumbaLinker):
        return linker
    return internals.linker_as(linker, PositionalNumbaLinker)
