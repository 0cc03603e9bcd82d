"""Skipping PyTensor's per-call input checks when they would find nothing."""

from __future__ import annotations

import numpy as np
from pytensor.tensor.type import TensorType

from pylearn_vae.speedups import internals, support

__all__ = ["CheckedOnce"]


class CheckedOnce:
    """A compiled function whose calls skip PyTensor's input checks when they
    would find nothing (the Numba and C backends).

    At every call a PyTensor function passes each argument through its
    type's ``filter`` and checks every pair of inputs that may share memory
    (copying one of two that do). A function loaded from the graph cache
    counts the shared variables it updates in place among those, so for a
    training step with a dozen parameters that is about 0.3 ms of Python
    per call (docs/performance.md). After one call made with the checks,
    a call is made with PyTensor's ``trust_input`` when both hold:

    - every argument is given by position and is already an aligned NumPy
      array of its dense tensor input's dtype, number of dimensions and
      static shape (what ``filter`` returns unchanged); functions with a
      sparse, scalar, borrowed or mutable explicit input are always checked;
    - the value of every shared variable the function reads is the very
      object it held after the previous call through this wrapper, or a
      NumPy array that shares no memory with any other shared value (a
      ``set_value`` of a new array, as a learning-rate schedule makes before
      every step: ``set_value`` has already checked its type), so no two can
      have come to share memory since the last check (PyTensor copies an
      update that would alias another value).

    Any other call is made with the checks, as before; so is every call
    where PyTensor's record of the function's inputs is not found
    (:func:`~pylearn_vae.speedups.internals.input_specs`,
    :func:`~pylearn_vae.speedups.internals.input_cells`). Every other
    attribute is the compiled function's.
    """

    def __init__(self, function) -> None:
        self.function = function
        self._called = False
        self._inner = None  # the PyTensor function, if calls may be trusted
        self._explicit = ()
        self._shared = ()  # the cells holding the shared inputs' values
        self._values = ()

    def __call__(self, *args, **kwargs):
        inner = self._inner
        if inner is None or kwargs or not self._trusted(args):
            result = self.function(*args, **kwargs)
            if not self._called:
                self._called = True
                self._learn()
            elif inner is not None:
                self._values = [cell[0] for cell in self._shared]
            return result
        before, inner.trust_input = inner.trust_input, True
        try:
            return inner(*args)
        finally:
            inner.trust_input = before
            self._values = [cell[0] for cell in self._shared]

    def _trusted(self, args) -> bool:
        if len(args) != len(self._explicit):
            return False
        for value, (dtype, shape) in zip(args, self._explicit):
            # dtype.num too: NumPy's longlong equals int64 but PyTensor's C code tells them apart.
            if (
                type(value) is not np.ndarray
                or value.dtype != dtype
                or value.dtype.num != dtype.num
            ):
                return False
            if not value.flags.aligned or value.ndim != len(shape):
                return False
            if any(n is not None and n != m for n, m in zip(shape, value.shape)):
                return False
        return self._shared_unchanged_or_fresh()

    def _shared_unchanged_or_fresh(self) -> bool:
        """Every shared value is the one of the previous call, or a NumPy
        array that shares no memory with another shared value (what
        ``set_value`` of a new array gives, as a schedule does at every
        step)."""
        cells, values = self._shared, self._values
        changed = [i for i, (cell, value) in enumerate(zip(cells, values)) if cell[0] is not value]
        for i in changed:
            new = cells[i][0]
            if type(new) is not np.ndarray:
                return False
            for j, cell in enumerate(cells):
                other = cell[0]
                if j != i and type(other) is np.ndarray and np.may_share_memory(new, other):
                    return False
        return True

    def _learn(self) -> None:
        """After the first successful call: decide whether later calls may be trusted."""
        try:
            learned = self._explicit_and_shared(support.innermost(self.function))
        except Exception:  # anything unexpected: keep PyTensor's checks
            learned = None
        if learned is not None:
            inner, self._explicit, self._shared = learned
            self._values = [cell[0] for cell in self._shared]
            self._inner = inner

    @staticmethod
    def _explicit_and_shared(inner):
        """``inner`` with its explicit inputs' (dtype, static shape) and the cells
        holding its shared inputs' values, or None if its calls are to stay checked."""
        specs = internals.input_specs(inner)
        cells = internals.input_cells(inner)
        if (
            specs is None
            or cells is None
            or not isinstance(getattr(inner, "trust_input", None), bool)
        ):
            return None
        explicit, shared = [], []
        for spec, cell in zip(specs, cells, strict=True):
            if spec.implicit:
                shared.append(cell)
                continue
            kind = spec.variable.type
            # Only read-only, not borrowed, dense tensors: filter leaves an
            # array of the right kind unchanged and checks no pair of them.
            if spec.mutable or spec.borrow or type(kind) is not TensorType:
                return None
            explicit.append((np.dtype(kind.dtype), tuple(kind.shape)))
        return inner, explicit, shared

    def __getattr__(self, name):
        if name == "function" or name.startswith("__"):  # not yet set (copy, pickle)
            raise AttributeError(name)
        return getattr(self.function, name)
