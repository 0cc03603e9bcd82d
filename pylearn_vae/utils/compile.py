"""The one obvious way to compile: ``function`` adds the RNG updates."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytensor
from pytensor.compile.mode import Mode, get_mode
from pytensor.graph.rewriting.basic import in2out, node_rewriter
from pytensor.tensor.math import Sum
from pytensor.tensor.type import TensorType

from pylearn_vae.ops import support
from pylearn_vae.ops.c_loops import contiguous_loops
from pylearn_vae.ops.vecops import use_vectorised_math, vectorise_fused_math
from pylearn_vae.utils.blas import configure_c_blas
from pylearn_vae.utils.rng import rng_updates

__all__ = [
    "function",
    "CheckedOnce",
    "resolve_mode",
    "is_jax_mode",
    "is_numba_mode",
    "place_on_jax_device",
    "quicker_numba_compiles",
]

#: LLVM optimisation level for Numba in the command-line programs.
NUMBA_OPT_LEVEL = "2"


def quicker_numba_compiles() -> bool:
    """Have Numba optimise at LLVM level 2 instead of 3 in this process.

    A cold compile is quicker and the step as fast: the elementwise loops are
    force-inlined and vectorised at level 2 as well (docs/performance.md).
    Only done when ``NUMBA_OPT`` is not
    set (the user's choice stands) and Numba is not yet imported (it reads
    the variable once); returns whether the level was set. The command-line
    programs call it at start.
    """
    if "NUMBA_OPT" in os.environ or "numba" in sys.modules:
        return False
    os.environ["NUMBA_OPT"] = NUMBA_OPT_LEVEL
    return True


@node_rewriter([Sum])
def _sum_in_output_dtype(fgraph, node):
    """Accumulate float sums in their output dtype.

    PyTensor sums float32 tensors with a float64 accumulator and casts back.
    The C and Numba backends honour the cast; the JAX backend returns the
    float64 accumulator, which would turn a float32 graph into float64 on
    the GPU. This rewrite is applied to JAX modes only, after all of
    PyTensor's own rewrites (which create new sums).
    """
    op = node.op
    out = node.outputs[0]
    if not out.dtype.startswith("float") or op.acc_dtype == out.dtype:
        return None
    return [Sum(axis=op.axis, dtype=op.dtype, acc_dtype=out.dtype)(node.inputs[0])]


def is_jax_mode(mode: Mode) -> bool:
    """Whether ``mode`` compiles with PyTensor's JAX linker."""
    return type(mode.linker).__name__.startswith("JAX")


def is_numba_mode(mode: Mode) -> bool:
    """Whether ``mode`` compiles with PyTensor's Numba linker."""
    from pytensor.link.numba.linker import NumbaLinker  # no Numba import

    return isinstance(mode.linker, NumbaLinker)


def place_on_jax_device(variable) -> None:
    """Keep the value of shared ``variable`` on JAX's default device.

    A JAX-compiled function takes every shared variable as an argument and
    converts NumPy values to device arrays at each call. Values the function
    updates come back as device arrays; a constant input such as the
    training set (157 MB for binarized MNIST) would instead be copied at
    every step (docs/performance.md), a host-to-device transfer on a GPU. ``get_value`` then returns the device array.
    """
    import jax

    storage = variable.container.storage
    storage[0] = jax.device_put(storage[0])


#: The rewrites (with positions) added to C modes: branch-free float32 math
#: and loops the compiler vectorises. Built once so that resolving a mode
#: twice does not add them twice.
_C_REWRITES = [use_vectorised_math(), vectorise_fused_math(), contiguous_loops()]

_JAX_REWRITES = [(in2out(_sum_in_output_dtype, name="pylearn_vae_sum_acc"), 100)]


def resolve_mode(mode=None) -> Mode:
    """Return the ``Mode`` object for ``mode`` (None: PyTensor's configured default),
    with this package's backend-specific additions: a rewrite for JAX modes,
    for Numba modes the speed-ups of :mod:`pylearn_vae.ops` where this
    PyTensor and Numba support them (:func:`pylearn_vae.ops.support.speedups_enabled`),
    and for the C backend a BLAS (:func:`pylearn_vae.utils.blas.configure_c_blas`)."""
    resolved = get_mode(mode)
    if is_jax_mode(resolved):
        # Imported here: importing JAX costs seconds that other backends need not pay.
        import pylearn_vae.ops.jax_im2col  # noqa: F401  (registers the JAX code)

        return support.with_rewrites(resolved, _JAX_REWRITES)
    if is_numba_mode(resolved):
        import pylearn_vae.ops.numba_im2col  # noqa: F401  (registers the Numba code)

        return support.speedup_mode(resolved) if support.speedups_enabled() else resolved
    # The C backend (CVM, C): link the OpenBLAS pip installed, branch-free float32 math.
    configure_c_blas()
    return support.with_rewrites(resolved, _C_REWRITES)


def function(inputs, outputs=None, updates=None, mode=None, *, precompile=False, **kwargs):
    """Compile like ``pytensor.function``, adding every random draw's update.

    Without the updates a compiled function would reuse the same random
    state and return the same noise at every call. Giving an explicit update
    for a draw's random state that differs from the draw's own next state
    is an error.

    Parameters
    ----------
    inputs, outputs, **kwargs
        As for ``pytensor.function``.
    updates : dict or list of pairs, optional
        Extra updates (parameters, velocities, ...).
    mode : str or Mode, optional
        ``None`` uses PyTensor's configured default (set it with
        ``PYTENSOR_FLAGS=mode=NUMBA``, ``mode=CVM`` or ``mode=JAX``). JAX
        needs concrete shapes: give symbolic inputs a static batch size
        (``space.make_theano_batch(batch_size=N)``).
    precompile : bool
        Numba: on a first run (the rewritten graph not yet cached), compile
        the function's code in a second process while this one goes on
        (:mod:`pylearn_vae.utils.precompile`); its first call waits for that.
        For a function that is first called after other work.
    """
    user_updates = dict(updates or {})
    found = rng_updates([outputs, list(user_updates.values())])
    for rng, nxt in found.items():
        if rng in user_updates and user_updates[rng] is not nxt:
            raise ValueError(
                f"an update for random state {rng.name!r} was given explicitly "
                "and differs from the draw's own next state"
            )
    pairs = list({**user_updates, **found}.items())
    resolved = resolve_mode(mode)
    if is_jax_mode(resolved):
        return pytensor.function(inputs, outputs, updates=pairs, mode=resolved, **kwargs)
    return CheckedOnce(_compile(inputs, outputs, pairs, resolved, precompile, kwargs))


def _compile(inputs, outputs, pairs, resolved: Mode, precompile: bool, kwargs: dict):
    """The Numba or C function of :func:`function` (before its ``CheckedOnce``)."""
    if not is_numba_mode(resolved):
        return pytensor.function(inputs, outputs, updates=pairs, mode=resolved, **kwargs)

    def build(numba_mode, precompile=False):
        if kwargs or outputs is None:
            return pytensor.function(inputs, outputs, updates=pairs, mode=numba_mode, **kwargs)
        # A warm start skips PyTensor's rewrites (see graph_cache).
        from pylearn_vae.utils.graph_cache import cached_function

        on_stored = None
        if precompile:
            from pylearn_vae.utils.precompile import compile_elsewhere

            def on_stored(fn, path, input_list, shared):
                speedups = support.uses_speedups(numba_mode)
                return compile_elsewhere(fn, path, input_list, shared, speedups)

        return cached_function(inputs, outputs, pairs, numba_mode, on_stored=on_stored)

    if not support.uses_speedups(resolved):
        return build(resolved, precompile)
    # (A rebuild happens at a first call: nothing to overlap it with.)
    return support.with_fallback(
        lambda: build(resolved, precompile), lambda: build(support.plain_mode(resolved))
    )


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
      object it held after the previous call through this wrapper: nothing
      outside (``set_value``, a checkpoint load, a direct call) has replaced
      one, so no two can have come to share memory since the last check
      (PyTensor copies an update that would alias another value).

    Any other call is made with the checks, as before. Every other attribute
    is the compiled function's.
    """

    def __init__(self, function) -> None:
        self.function = function
        self._called = False
        self._inner = None  # the PyTensor function, if calls may be trusted
        self._explicit = ()
        self._shared = ()
        self._values = ()

    def __call__(self, *args, **kwargs):
        inner = self._inner
        if inner is None or kwargs or not self._trusted(args):
            result = self.function(*args, **kwargs)
            if not self._called:
                self._called = True
                self._learn()
            elif inner is not None:
                self._values = [cell.storage[0] for cell in self._shared]
            return result
        before, inner.trust_input = inner.trust_input, True
        try:
            return inner(*args)
        finally:
            inner.trust_input = before
            self._values = [cell.storage[0] for cell in self._shared]

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
        return all(cell.storage[0] is value for cell, value in zip(self._shared, self._values))

    def _learn(self) -> None:
        """After the first successful call: decide whether later calls may be trusted."""
        try:
            learned = self._explicit_and_shared(support.innermost(self.function))
        except Exception:  # anything unexpected: keep PyTensor's checks
            learned = None
        if learned is not None:
            inner, self._explicit, self._shared = learned
            self._values = [cell.storage[0] for cell in self._shared]
            self._inner = inner

    @staticmethod
    def _explicit_and_shared(inner):
        """``inner`` with its explicit inputs' (dtype, static shape) and its shared
        inputs' storage cells, or None if its calls are to stay checked."""
        maker = getattr(inner, "maker", None)
        storage = getattr(inner, "input_storage", None)
        if (
            maker is None
            or storage is None
            or not isinstance(getattr(inner, "trust_input", None), bool)
        ):
            return None
        explicit, shared = [], []
        for spec, cell in zip(maker.inputs, storage, strict=True):
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
