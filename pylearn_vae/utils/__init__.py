"""Small helpers shared by the whole package: dtypes, shared variables."""

from __future__ import annotations

import contextlib
import contextvars
import numbers
import os
from collections.abc import Iterator, MutableMapping

import numpy as np
import pytensor
import pytensor.tensor as pt

__all__ = [
    "floatX",
    "using_floatX",
    "as_floatX",
    "constantX",
    "sharedX",
    "safe_update",
]

_VALID_FLOATX = ("float32", "float64")


def _default_floatx() -> str:
    value = os.environ.get("PYLEARN_VAE_FLOATX", "float32")
    if value not in _VALID_FLOATX:
        raise ValueError(
            f"PYLEARN_VAE_FLOATX={value!r} is not supported; use one of {', '.join(_VALID_FLOATX)}"
        )
    return value


_FLOATX: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pylearn_vae_floatX", default=None
)


def floatX() -> str:
    """Return the floating point dtype used for parameters and graphs.

    It is ``float32`` unless the environment variable ``PYLEARN_VAE_FLOATX``
    says ``float64`` or the caller is inside :func:`using_floatX`.
    PyTensor's own ``config.floatX`` is deliberately not consulted: its
    default is float64, which would silently double memory and time.
    """
    value = _FLOATX.get()
    return value if value is not None else _default_floatx()


@contextlib.contextmanager
def using_floatX(dtype: str) -> Iterator[str]:
    """Build models and graphs with ``dtype`` inside a ``with`` block.

    Used by the float64 gradient checks; everything built inside the block
    (parameters, symbolic inputs, noise) takes this dtype.
    """
    if dtype not in _VALID_FLOATX:
        raise ValueError(f"floatX must be one of {_VALID_FLOATX}, got {dtype!r}")
    token = _FLOATX.set(dtype)
    try:
        yield dtype
    finally:
        _FLOATX.reset(token)


def whole_number(value, minimum: int, what: str) -> int:
    """``value`` as an ``int`` if it is a whole number >= ``minimum`` (0 or 1),
    else a ``ValueError`` naming ``what``.

    Unlike :func:`check_positive_int`, a float holding a whole number
    (``16.0``, as a computed YAML value may be) passes; ``2.5`` does not.

    >>> whole_number(16.0, 1, "output_channels")
    16
    """
    kind = {0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}"
    )
    try:
        whole = not isinstance(value, bool) and int(value) == value and value >= minimum
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise ValueError(f"{what} must be {kind}, got {value!r}")
    return int(value)


def check_positive_int(value, what: str) -> int:
    """``value`` as an ``int`` if it is an integer >= 1 (not a bool), else a
    ``ValueError`` naming ``what``.

    >>> check_positive_int(3, "nhid")
    3
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def as_floatX(value) -> np.ndarray:
    """Return ``value`` as a NumPy array of dtype :func:`floatX`.

    >>> as_floatX([1, 2]).dtype.name
    'float32'
    """
    return np.asarray(value, dtype=floatX())


def constantX(value):
    """Return a symbolic constant of dtype :func:`floatX` (as Pylearn2's did).

    PyTensor turns a Python float that float32 cannot hold exactly (such
    as ``log(2 pi)``) into a float64 constant, which would upcast a float32
    graph; wrapping the constant with this function avoids that.

    >>> constantX(0.1).dtype
    'float32'
    """
    return pt.constant(as_floatX(value))


def sharedX(value, name: str | None = None, borrow: bool = False):
    """Create a PyTensor shared variable holding ``value`` cast to floatX.

    Its type has the value's shape (a later ``set_value`` must keep it), so
    graphs that use it need no run-time shape checks for it (fewer nodes in
    every compiled step).
    """
    value = as_floatX(value)
    return pytensor.shared(value, name=name, borrow=borrow, shape=value.shape)


def safe_update(target: MutableMapping, source) -> MutableMapping:
    """Update ``target`` with ``source``, refusing to overwrite a key.

    >>> safe_update({'a': 1}, {'b': 2})
    {'a': 1, 'b': 2}
    """
    for key, value in dict(source).items():
        if key in target:
            raise KeyError(f"key {key!r} is already present; refusing to overwrite it")
        target[key] = value
    return target
