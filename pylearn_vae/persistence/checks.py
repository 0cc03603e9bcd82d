"""What every model must satisfy to be written to, or come out of, a file.

These checks talk to a model only through its public methods
(``get_params``, ``get_prior_params``) and attributes.
"""

from __future__ import annotations

import math

import numpy as np

from pylearn_vae.utils.files import ModelFileError

__all__ = [
    "SizeBound",
    "all_params",
    "check_finite_params",
    "check_savable",
    "params_problem",
    "sizes_problem",
]


def all_params(model) -> list:
    """Every parameter of ``model``: trained ones, then fixed ones (e.g. a prior that is not learned)."""
    params = list(model.get_params())
    getter = getattr(model, "get_prior_params", None)
    extra = list(getter()) if getter else []
    return params + [p for p in extra if p not in params]


def params_problem(model) -> str | None:
    """Why the parameters of ``model`` may not be saved or used, or None if they are fine.

    Every parameter must hold a finite array of floats. Objects without
    ``get_params`` have nothing to check.
    """
    if getattr(model, "get_params", None) is None:
        return None
    for param in model.get_params():
        value = param.get_value(borrow=True)
        if not hasattr(value, "dtype") or np.dtype(value.dtype).kind != "f":
            return f"parameter {param.name!r} holds {type(value).__name__}, not an array of floats"
        value = np.asarray(value)
        if not np.isfinite(value).all():
            bad = "NaN" if np.isnan(value).any() else "infinite"
            return f"parameter {param.name!r} has {bad} values"
    return None


# Attributes that size a model's parameters (and the arrays its methods allocate).
_SIZE_ATTRIBUTES = ("nvis", "nhid", "dim", "ndim")


class SizeBound:
    """The sizes a model file may declare, given the shapes of its stored parameters.

    A size is believable if a stored parameter has it as a dimension, or if
    it is no larger than the largest stored parameter (a convolutional
    model's 784 pixels need not be any array's dimension: its kernels are
    4x4, but its dense layers hold far more numbers): either way no method
    allocates more per example than the file already holds.
    """

    def __init__(self, shapes) -> None:
        shapes = [tuple(int(n) for n in shape) for shape in shapes]
        self.dims = {n for shape in shapes for n in shape}
        self.largest = max((math.prod(shape) for shape in shapes), default=0)

    def allows(self, value: int) -> bool:
        return value in self.dims or value <= self.largest


def sizes_problem(model) -> str | None:
    """Why the size attributes of a loaded model disagree with its parameters, or None.

    Every ``nvis``/``nhid``/``dim``/``ndim`` integer held by one of the
    model's pylearn_vae objects must be allowed by :class:`SizeBound`: a pickle that pairs small arrays with ``nhid = 10**9`` would
    otherwise make sampling allocate without bound.
    """
    if getattr(model, "get_params", None) is None:
        return None
    bound = SizeBound(np.shape(p.get_value(borrow=True)) for p in all_params(model))
    seen: set[int] = set()
    stack = [model]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, list | tuple):
            stack.extend(obj)
            continue
        if isinstance(obj, dict):
            stack.extend(obj.values())
            continue
        if not type(obj).__module__.startswith("pylearn_vae."):
            continue
        attributes = getattr(obj, "__dict__", {})
        for key in _SIZE_ATTRIBUTES:
            value = attributes.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and not bound.allows(value):
                return (
                    f"{type(obj).__name__}.{key} is {value}, but no parameter in the file "
                    "has that size"
                )
        stack.extend(attributes.values())
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
