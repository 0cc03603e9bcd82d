"""Compiled Numba graphs are called with one argument per input.

PyTensor's own cached wrapper takes ``*args``; with a random generator among
the inputs Numba then typed every array in Python at every call (0.35 ms per
training step of the seed model).
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from numba.core import dispatcher
from pytensor.compile.mode import get_mode

from pylearn_vae.compile import function, resolve_mode
from pylearn_vae.speedups import numba_math
from pylearn_vae.speedups.numba_linker import PositionalNumbaLinker
from pylearn_vae.utils.rng import SymbolicRNG, rng_updates

# Tests of the speed machinery itself: skipped when PYLEARN_VAE_SPEEDUPS=0 turns it off.
pytestmark = pytest.mark.speedups


def _graph():
    x = pt.matrix("x", dtype="float32")
    w = pt.matrix("w", dtype="float32")
    noise = SymbolicRNG(seed=4).uniform(x.shape, dtype="float32")
    return [x, w], [pt.tanh(x @ w).sum() + noise.sum(), x * noise]


@pytest.fixture
def python_typed(monkeypatch):
    """The types of the values Numba's dispatcher had to type in Python."""
    seen = []
    original = dispatcher._DispatcherBase.typeof_pyval

    def spy(self, value):
        seen.append(type(value))
        return original(self, value)

    monkeypatch.setattr(dispatcher._DispatcherBase, "typeof_pyval", spy)
    return seen


def _values():
    rng = np.random.default_rng(0)
    return rng.standard_normal((5, 3), dtype=np.float32), rng.standard_normal(
        (3, 4), dtype=np.float32
    )


def test_numba_modes_get_the_positional_linker():
    assert isinstance(resolve_mode("NUMBA").linker, PositionalNumbaLinker)
    # Resolving an already resolved mode keeps it as it is.
    mode = resolve_mode("NUMBA")
    assert resolve_mode(mode).linker is mode.linker


@pytest.mark.compiles
def test_only_the_generator_is_typed_in_python(python_typed):
    inputs, outputs = _graph()
    fn = function(inputs, outputs, mode="NUMBA")
    x, w = _values()
    fn(x, w)  # compiles (or loads) the graph
    python_typed.clear()
    for _ in range(3):
        fn(x, w)
    assert python_typed, "the generator input should still be typed in Python"
    assert set(python_typed) == {np.random.Generator}, python_typed


@pytest.mark.compiles
def test_results_match_pytensors_own_numba_linker():
    inputs, outputs = _graph()
    ours = function(inputs, outputs, mode="NUMBA")
    inputs, outputs = _graph()  # same seed, fresh generators
    # The same rewrites, PyTensor's linker.
    mode = get_mode("NUMBA").register(*numba_math.NUMBA_REWRITES)
    theirs = pytensor.function(inputs, outputs, updates=rng_updates(outputs), mode=mode)
    assert not isinstance(theirs.maker.linker, PositionalNumbaLinker)
    x, w = _values()
    for _ in range(2):
        for a, b in zip(ours(x, w), theirs(x, w), strict=True):
            np.testing.assert_array_equal(a, b)
