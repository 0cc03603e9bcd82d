"""Parameters are shared variables with static shapes, so compiled steps carry
no run-time shape checks for them."""

from __future__ import annotations

import numpy as np
import pytest

from pylearn_vae.compile import function
from pylearn_vae.costs.vae import VAECriterion
from pylearn_vae.training_algorithms.learning_rule import Momentum
from pylearn_vae.utils import sharedX
from tests.helpers.models import binary_data, make_vae


def test_sharedX_has_the_static_shape_of_its_value():
    w = sharedX(np.ones((3, 4)), name="w")
    assert w.type.shape == (3, 4) and w.dtype == "float32"
    assert sharedX(0.5).type.shape == ()
    w.set_value(np.zeros((3, 4), "float32"))  # same shape: fine
    with pytest.raises(TypeError, match="shape"):
        w.set_value(np.zeros((4, 3), "float32"))


@pytest.mark.compiles
def test_training_step_reads_no_parameter_shape_at_run_time():
    model = make_vae(nvis=10, nhid=3, hidden=6)
    X = sharedX(binary_data(20, 10), name="X")
    cost = VAECriterion()
    loss = cost.expr(model, X)
    grads, extra = cost.get_gradients(model, X, cost=loss)
    rate = sharedX(0.1, name="learning_rate")
    updates = Momentum(0.5).get_updates(rate, grads)
    updates.update(extra)
    step = function([], loss, updates=updates)
    shared = {
        graph_input: spec.variable
        for graph_input, spec in zip(step.maker.fgraph.inputs, step.maker.inputs)
    }
    watched = set(model.get_params()) | set(updates)
    shape_reads = [
        node
        for node in step.maker.fgraph.apply_nodes
        if type(node.op).__name__ in ("Shape", "Shape_i") and shared.get(node.inputs[0]) in watched
    ]
    assert not shape_reads
    assert np.isfinite(step())
