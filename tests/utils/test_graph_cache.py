"""The cache of rewritten graphs: a hit computes exactly what a fresh compile does,
and the key tells apart graphs that differ in anything that matters."""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from pylearn_vae.compile import function, resolve_mode
from pylearn_vae.costs.vae import VAECriterion
from pylearn_vae.datasets import DenseDesignMatrix
from pylearn_vae.speedups import graph_cache
from pylearn_vae.speedups.graph_cache import NotCacheable, graph_key
from pylearn_vae.training_algorithms.learning_rule import Momentum
from pylearn_vae.training_algorithms.sgd import SGD
from tests.helpers.markers import numba_only
from tests.helpers.models import binary_data, make_vae

# Tests of the speed machinery itself: skipped when PYLEARN_VAE_SPEEDUPS=0 turns it off.
pytestmark = [numba_only, pytest.mark.speedups]  # the cache serves the Numba backend


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(graph_cache, "_cache_dir", lambda: tmp_path)
    monkeypatch.setenv("PYLEARN_VAE_GRAPH_CACHE", "1")
    return tmp_path


@pytest.fixture
def loads(monkeypatch):
    """Counts the functions built from a cache entry."""
    count = [0]
    original = graph_cache._load

    def counting(*args):
        fn = original(*args)
        count[0] += 1  # only functions actually built from an entry
        return fn

    monkeypatch.setattr(graph_cache, "_load", counting)
    return count


def _train(steps=3):
    """A fresh model and SGD (same seeds every time); the step's costs and final parameters."""
    model = make_vae(nvis=20, nhid=3, hidden=16, seed=7, irange=0.1)
    data = DenseDesignMatrix(X=binary_data(60, 20, seed=2))
    algo = SGD(learning_rate=0.05, cost=VAECriterion(), batch_size=20, learning_rule=Momentum(0.5))
    algo.setup(model, data)
    step = algo._step_function(20)
    costs = [np.asarray(step(np.arange(20) + 20 * (i % 3))) for i in range(steps)]
    return costs, model.get_param_values()


@pytest.mark.compiles
def test_a_cache_hit_computes_what_a_fresh_compile_does(cache_dir, loads, monkeypatch):
    first = _train()
    entries = sorted(cache_dir.iterdir())
    assert entries, "the first compile should have stored its rewritten graph"
    assert loads[0] == 0
    second = _train()
    assert loads[0] >= 1, "the same graph compiled again should come from the cache"
    assert sorted(cache_dir.iterdir()) == entries
    monkeypatch.setenv("PYLEARN_VAE_GRAPH_CACHE", "0")
    plain = _train()
    for run in (first, second):
        for a, b in zip(run[0] + run[1], plain[0] + plain[1], strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.compiles
def test_a_damaged_entry_is_compiled_again_and_replaced(cache_dir, loads):
    expected = _train()
    for entry in cache_dir.iterdir():
        entry.write_bytes(b"not a pickle")
    again = _train()
    for a, b in zip(again[0] + again[1], expected[0] + expected[1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(entry.read_bytes() != b"not a pickle" for entry in cache_dir.iterdir())
    _train()
    assert loads[0] >= 1


@pytest.mark.compiles
@pytest.mark.parametrize("problem", ["full", "read-only", "a file"])
def test_a_cache_that_cannot_be_written_only_costs_the_compile(tmp_path, monkeypatch, problem):
    """A full disk, a read-only folder or a file where the folder should be:
    training goes on with the same numbers, and nothing is stored."""
    import errno
    import os

    from pylearn_vae.utils import files

    expected = _train(steps=2)
    folder = tmp_path / "graphs"
    monkeypatch.setattr(graph_cache, "_cache_dir", lambda: folder)
    monkeypatch.setenv("PYLEARN_VAE_GRAPH_CACHE", "1")
    if problem == "full":

        def no_space(path, write):  # what the package's writer raises on ENOSPC
            raise files.ModelFileError(f"could not save {path}: the disk is full")

        monkeypatch.setattr(files, "atomic_write", no_space)
    elif problem == "read-only":
        folder.mkdir()
        folder.chmod(0o500)
        if os.access(folder, os.W_OK):  # (root writes anyway: make the write fail as it would)
            monkeypatch.setattr(
                files.tempfile,
                "mkstemp",
                lambda *a, **k: (_ for _ in ()).throw(PermissionError(errno.EACCES, "denied")),
            )
    else:
        folder.write_text("not a folder")
    got = _train(steps=2)
    for a, b in zip(got[0] + got[1], expected[0] + expected[1], strict=True):
        np.testing.assert_array_equal(a, b)
    if problem == "full":
        assert not any(folder.iterdir())
    elif problem == "read-only":
        folder.chmod(0o700)
        assert not any(folder.iterdir())


f32 = np.float32


def _key(build):
    x = pt.matrix("x", dtype="float32", shape=(None, 4))
    w = pytensor.shared(np.ones((4, 3), dtype="float32"), name="w")
    out, updates = build(x, w)
    return graph_key([x], [out], updates, resolve_mode())[0]


def test_the_key_sees_values_properties_shapes_and_updates():
    def base(x, w):
        return (x @ w * f32(2.0)).sum(axis=0), [(w, w - f32(0.1))]

    variants = [
        lambda x, w: ((x @ w * f32(3.0)).sum(axis=0), [(w, w - f32(0.1))]),  # a constant
        lambda x, w: ((x @ w * f32(2.0)).sum(axis=1), [(w, w - f32(0.1))]),  # an op property
        lambda x, w: ((x @ w * f32(2.0)).sum(axis=0), [(w, w - f32(0.2))]),  # an update
        lambda x, w: ((x @ w * f32(2.0)).sum(axis=0), []),  # no update
        lambda x, w: ((pt.tanh(x) @ w * f32(2.0)).sum(axis=0), [(w, w - f32(0.1))]),  # an extra op
    ]
    key = _key(base)
    assert _key(base) == key  # rebuilt from new variables: the same key
    keys = {_key(variant) for variant in variants}
    assert key not in keys and len(keys) == len(variants)
    # The shared variable's static shape is part of its type.
    x = pt.matrix("x", dtype="float32", shape=(None, 4))
    w = pytensor.shared(np.ones((4, 3), dtype="float32"), name="w", shape=(4, 3))
    assert (
        graph_key([x], [(x @ w * f32(2.0)).sum(axis=0)], [(w, w - f32(0.1))], resolve_mode())[0]
        != key
    )


@pytest.mark.compiles
def test_what_the_key_cannot_describe_is_not_cached(cache_dir):
    with pytest.raises(NotCacheable):
        graph_cache._value_key(lambda: 0)
    with pytest.raises(NotCacheable):
        graph_cache._value_key(object())
    # A graph with an operation the key cannot describe compiles, uncached.
    x = pt.vector("x", dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Numba runs the op in object mode
        fn = function([x], _Double()(x) + 1)
    np.testing.assert_array_equal(fn(np.ones(2, dtype="float32")), [3, 3])
    assert not any(cache_dir.iterdir())


class _Double(Op):
    """An op of neither PyTensor nor this package, without ``__props__``."""

    def make_node(self, x):
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = inputs[0] * 2
