"""What kind of PyTensor mode a function is compiled with, and adding rewrites to one."""

from __future__ import annotations

import weakref

from pytensor.compile.mode import Mode, get_mode

__all__ = ["is_jax_mode", "is_numba_mode", "with_rewrites"]

#: The rewrites (by id) that :func:`with_rewrites` put into each mode it
#: made. A mode's own list of them is not public PyTensor API, so a mode
#: made elsewhere counts as having none of them (PyTensor applies a rewrite
#: listed twice once).
_ADDED: weakref.WeakKeyDictionary[Mode, frozenset[int]] = weakref.WeakKeyDictionary()


def is_jax_mode(mode: Mode) -> bool:
    """Whether ``mode`` compiles with PyTensor's JAX linker."""
    return type(mode.linker).__name__.startswith("JAX")


def is_numba_mode(mode: Mode) -> bool:
    """Whether ``mode`` compiles with PyTensor's Numba linker (that of its
    NUMBA mode, or a subclass of it)."""
    return isinstance(mode.linker, type(get_mode("NUMBA").linker))


def with_rewrites(mode: Mode, rewrites) -> Mode:
    """``mode`` with the ``(rewrite, position)`` pairs it does not have yet registered
    (resolving a mode twice must not add a rewrite twice)."""
    present = _ADDED.get(mode, frozenset())
    extra = [item for item in rewrites if id(item[0]) not in present]
    if not extra:
        return mode
    registered = mode.register(*extra)
    _ADDED[registered] = present | {id(rewrite) for rewrite, _ in extra}
    return registered
