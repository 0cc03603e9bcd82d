"""Everything pylearn_vae does only for speed or start-up, behind one switch.

What is here changes how fast a result comes, never the result: the Numba
and C backends' extra rewrites and loops, the positional Numba linker, the
graph cache, compiling in a second process and the probe that checks the
speed-ups against this PyTensor and Numba, :class:`CheckedOnce` (skipping
PyTensor's per-call input checks when they would find nothing), a BLAS for
the C backend, and the programs' process settings (allocator, Numba's
optimisation level, OpenBLAS's spin) and the training step's BLAS thread
count, chosen by measuring it (:mod:`~pylearn_vae.speedups.threads`). The rest of the package reaches it
only through the functions below.

**The switch.** ``PYLEARN_VAE_SPEEDUPS=0`` in the environment, or
:func:`set_enabled` ``(False)`` in Python, turns all of it off:
:func:`pylearn_vae.compile.function` is then ``pytensor.function`` plus the
random generators' updates (and, on JAX, the float32 sums the backend
needs to stay float32). Set it before compiling: a function already
compiled keeps what it was compiled with. The older, finer switches
``PYLEARN_VAE_NUMBA_SPEEDUPS=0`` (Numba's rewrites and linker) and
``PYLEARN_VAE_GRAPH_CACHE=0`` (the graph cache) still work.

Flush-to-zero of subnormal numbers changes results, so it is not a
speed-up here: it is a numerics setting of its own
(:mod:`pylearn_vae.numerics`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator

import pytensor
from pytensor.compile.mode import Mode

from pylearn_vae.speedups import internals, support
from pylearn_vae.speedups.blas import configure_c_blas
from pylearn_vae.speedups.c_loops import contiguous_loops
from pylearn_vae.speedups.checked import CheckedOnce
from pylearn_vae.speedups.process import prepare_process as _prepare_process
from pylearn_vae.speedups.threads import ThreadChooser, candidates, fixed_count
from pylearn_vae.speedups.vecops import use_vectorised_math, vectorise_fused_math
from pylearn_vae.utils.modes import is_jax_mode, is_numba_mode, with_rewrites

__all__ = [
    "ENV_VARIABLE",
    "enabled",
    "set_enabled",
    "resolve_mode",
    "compile_function",
    "second_process_compiles",
    "compile_now",
    "keep_on_device",
    "prepare_process",
    "thread_chooser",
    "CheckedOnce",
]

#: Set to ``0`` to turn every speed-up off.
ENV_VARIABLE = "PYLEARN_VAE_SPEEDUPS"

#: What :func:`set_enabled` said last (None: the environment decides). One
#: setting for the whole process: functions are compiled from more than one
#: thread.
_SETTING: list[bool | None] = [None]

#: Whether a function compiled with ``precompile=True`` may compile its
#: code in a second process (the job that runs training decides).
_SECOND_PROCESS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "pylearn_vae_second_process", default=False
)


def enabled() -> bool:
    """Whether the speed-ups are on: :func:`set_enabled` if it was called,
    else ``PYLEARN_VAE_SPEEDUPS`` (on unless it is ``0``)."""
    setting = _SETTING[0]
    if setting is not None:
        return setting
    return os.environ.get(ENV_VARIABLE, "1").strip() != "0"


def set_enabled(flag: bool | None) -> bool | None:
    """Turn the speed-ups on (True) or off (False) in this process for what
    is compiled from now on; None hands the decision back to
    ``PYLEARN_VAE_SPEEDUPS``. Returns the previous setting."""
    if flag is not None and not isinstance(flag, bool):
        raise TypeError(f"set_enabled takes True, False or None, got {flag!r}")
    previous, _SETTING[0] = _SETTING[0], flag
    return previous


#: The rewrites (with positions) added to C modes: branch-free float32 math
#: and loops the compiler vectorises. Built once so that resolving a mode
#: twice does not add them twice.
_C_REWRITES = [use_vectorised_math(), vectorise_fused_math(), contiguous_loops()]


def resolve_mode(mode: Mode) -> Mode:
    """``mode`` with the speed-ups for its backend: for Numba the patch
    loops, the rewrites and the positional linker where this PyTensor and
    Numba support them (:func:`pylearn_vae.speedups.support.speedups_enabled`);
    for the C backend a BLAS and vectorised loops. JAX modes, and every mode
    while the speed-ups are off, are returned as they are."""
    if not enabled() or is_jax_mode(mode):
        return mode
    if is_numba_mode(mode):
        # Imported here: Numba is imported only by Numba modes.
        from pylearn_vae.speedups import numba_im2col

        numba_im2col.register()
        return support.speedup_mode(mode) if support.speedups_enabled() else mode
    configure_c_blas()
    return with_rewrites(mode, _C_REWRITES)


def compile_function(inputs, outputs, updates, mode: Mode, *, precompile=False, **kwargs):
    """``pytensor.function(inputs, outputs, updates=updates, mode=mode, **kwargs)``,
    compiled the fastest way there is while the speed-ups are on.

    ``mode`` comes from :func:`resolve_mode`. On Numba a warm start skips
    PyTensor's rewrites (:mod:`~pylearn_vae.speedups.graph_cache`), and with
    ``precompile`` (a function first called after other work) inside
    :func:`second_process_compiles` its code compiles in a second process
    (:mod:`~pylearn_vae.speedups.precompile`). On Numba and C the result is
    wrapped in :class:`CheckedOnce`.
    """
    if not enabled() or is_jax_mode(mode):
        return pytensor.function(inputs, outputs, updates=updates, mode=mode, **kwargs)
    precompile = precompile and _SECOND_PROCESS.get()
    return CheckedOnce(_compile(inputs, outputs, updates, mode, precompile, kwargs))


def _compile(inputs, outputs, pairs, resolved: Mode, precompile: bool, kwargs: dict):
    """The Numba or C function of :func:`compile_function` (before its ``CheckedOnce``)."""
    if not is_numba_mode(resolved):
        return pytensor.function(inputs, outputs, updates=pairs, mode=resolved, **kwargs)

    def build(numba_mode, precompile=False):
        if kwargs or outputs is None:
            return pytensor.function(inputs, outputs, updates=pairs, mode=numba_mode, **kwargs)
        # Imported here: the graph cache and the second process are Numba's only.
        from pylearn_vae.speedups.graph_cache import cached_function

        on_stored = None
        if precompile:
            from pylearn_vae.speedups.precompile import compile_elsewhere

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


@contextlib.contextmanager
def second_process_compiles(allowed: bool) -> Iterator[bool]:
    """Inside the ``with`` block, functions compiled with ``precompile=True``
    compile their Numba code in a second process where ``allowed`` (the job
    that runs training passes whether there is a second CPU), and
    :func:`compile_now` compiles here. Yields whether it is in effect."""
    token = _SECOND_PROCESS.set(bool(allowed) and enabled())
    try:
        yield _SECOND_PROCESS.get()
    finally:
        _SECOND_PROCESS.reset(token)


def compile_now(function) -> bool:
    """Inside :func:`second_process_compiles`, compile ``function``'s Numba
    code now, for the argument types it will be called with, while a second
    process compiles another function's; whether that was done. Elsewhere
    the code compiles at the first call, as usual."""
    if not (enabled() and _SECOND_PROCESS.get()):
        return False
    from pylearn_vae.speedups.precompile import compile_here

    return compile_here(function)


def prepare_process() -> None:
    """The process settings of a program whose main job is training or
    evaluating (:mod:`pylearn_vae.speedups.process`); none while the
    speed-ups are off."""
    if enabled():
        _prepare_process()


def thread_chooser() -> ThreadChooser | None:
    """What sets a training job's BLAS threads (:mod:`~pylearn_vae.speedups.threads`):
    the count ``PYLEARN_VAE_THREADS`` gives; else, while the speed-ups are
    on, a measurement of every candidate count; None where the user fixed
    the count with a library's own variable (or the speed-ups are off and
    none was given), leaving it to the libraries."""
    import os

    from pylearn_vae.speedups.threads import ENV_VARIABLE
    from pylearn_vae.utils.processes import usable_cpus

    count = fixed_count()
    if count is not None:
        given = os.environ.get(ENV_VARIABLE, "").strip().lower() not in ("", "auto")
        return ThreadChooser([count]) if given else None
    return ThreadChooser(candidates(usable_cpus())) if enabled() else None


def keep_on_device(variable, mode: Mode) -> None:
    """Keep the value of shared ``variable`` on JAX's default device (JAX modes).

    A JAX-compiled function takes every shared variable as an argument and
    converts NumPy values to device arrays at each call. Values the function
    updates come back as device arrays; a constant input such as the
    training set would instead be copied at every step, a host-to-device
    transfer on a GPU. ``get_value`` then returns the device array.
    """
    if not (enabled() and is_jax_mode(mode)):
        return
    cell = internals.value_cell(variable)
    if cell is None:  # (PyTensor keeps the value elsewhere: it stays on the host)
        return
    import jax

    cell[0] = jax.device_put(cell[0])
