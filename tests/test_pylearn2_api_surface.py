"""Pylearn2 API kept for scripts written against Pylearn2, though nothing in the
package calls it: each behaves as its Pylearn2 counterpart."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from pylearn_vae.costs.vae import VAECriterion
from pylearn_vae.datasets import DenseDesignMatrix
from pylearn_vae.models.mlp import MLP, Linear, Sigmoid
from tests.helpers.models import make_vae


@pytest.mark.compiles
def test_censor_updates_is_modify_updates_under_its_old_name():
    layer = Linear(layer_name="h", dim=3, irange=1.0, max_col_norm=0.5)
    mlp = MLP(layers=[layer], nvis=4, seed=0)
    proposed = layer.W * 10
    updates = OrderedDict([(layer.W, proposed)])
    mlp.censor_updates(updates)
    constrained = updates[layer.W].eval()
    assert updates[layer.W] is not proposed
    np.testing.assert_array_less(np.linalg.norm(constrained, axis=0), 0.5 + 1e-5)


def test_data_specs_name_the_input_space_and_features():
    vae = make_vae(nvis=7)
    assert vae.get_monitoring_data_specs() == (vae.get_input_space(), "features")
    assert VAECriterion().get_data_specs(vae) == (vae.get_input_space(), "features")
    data = DenseDesignMatrix(X=np.zeros((5, 7), dtype="float32"))
    space, source = data.get_data_specs()
    assert source == "features" and space.dim == 7


@pytest.mark.parametrize("mode", ["sequential", "shuffled_sequential"])
def test_dataset_iterator_visits_every_row_once(mode):
    X = np.arange(23 * 2, dtype="float32").reshape(23, 2)
    data = DenseDesignMatrix(X=X)
    batches = list(data.iterator(mode=mode, batch_size=5, rng=np.random.RandomState(0)))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    rows = np.concatenate(batches)
    if mode == "sequential":
        np.testing.assert_array_equal(rows, X)
    else:
        np.testing.assert_array_equal(np.sort(rows[:, 0]), X[:, 0])


def test_sigmoid_checks_its_monitor_style():
    assert Sigmoid(layer_name="s", dim=2, irange=0.1, monitor_style="detection").monitor_style
    with pytest.raises(ValueError, match="monitor_style"):
        Sigmoid(layer_name="s", dim=2, irange=0.1, monitor_style="probability")
