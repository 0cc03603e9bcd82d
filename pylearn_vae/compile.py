"""The one obvious way to compile: ``function`` adds the random generators' updates.

How fast the result runs is the business of :mod:`pylearn_vae.speedups`,
which this module calls through its interface; with the speed-ups off,
``function`` is ``pytensor.function`` plus the updates.
"""

from __future__ import annotations

from pytensor.compile.mode import Mode, get_mode
from pytensor.graph.rewriting.basic import in2out, node_rewriter
from pytensor.tensor.math import Sum

from pylearn_vae import speedups
from pylearn_vae.utils.modes import is_jax_mode, is_numba_mode, with_rewrites
from pylearn_vae.utils.rng import rng_updates

__all__ = ["function", "resolve_mode", "is_jax_mode", "is_numba_mode"]


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


_JAX_REWRITES = [(in2out(_sum_in_output_dtype, name="pylearn_vae_sum_acc"), 100)]


def resolve_mode(mode=None) -> Mode:
    """Return the ``Mode`` object for ``mode`` (None: PyTensor's configured default).

    JAX modes get the operations' JAX code and float32 sums (needed for
    correct results); Numba and C modes get the speed-ups of
    :func:`pylearn_vae.speedups.resolve_mode` while those are on."""
    resolved = get_mode(mode)
    if is_jax_mode(resolved):
        # Imported here: importing JAX costs seconds that other backends need not pay.
        import pylearn_vae.ops.jax_im2col  # noqa: F401  (registers the JAX code)

        return with_rewrites(resolved, _JAX_REWRITES)
    return speedups.resolve_mode(resolved)


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
        A hint that the function is first called after other work: where
        the job running training allows it
        (:func:`pylearn_vae.speedups.second_process_compiles`), its code
        compiles in a second process meanwhile.
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
    return speedups.compile_function(
        inputs, outputs, pairs, resolve_mode(mode), precompile=precompile, **kwargs
    )
