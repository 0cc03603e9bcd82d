"""GatedLinear against NumPy, and inside a VAE."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pylearn_vae.models.mlp import MLP, GatedLinear
from tests.helpers.models import binary_data, make_vae


@pytest.mark.compiles
def test_gated_units_multiply_the_linear_half_by_the_sigmoid_of_the_gate():
    layer = GatedLinear(layer_name="g", dim=4, irange=0.5, init_bias=0.1, gate_init_bias=-1.0)
    mlp = MLP(layers=[layer], nvis=3, seed=0)
    W, b = layer.W.get_value(), layer.b.get_value()
    assert W.shape == (3, 8) and b.shape == (8,)
    np.testing.assert_array_equal(b, np.float32([0.1] * 4 + [-1.0] * 4))
    assert layer.get_output_space().dim == 4
    x = pt.matrix("x", dtype="float32")
    f = pytensor.function([x], mlp.fprop(x), mode="FAST_COMPILE")
    xv = np.random.default_rng(0).standard_normal((5, 3)).astype("float32")
    z = xv.astype("float64") @ W + b
    want = z[:, :4] / (1 + np.exp(-z[:, 4:]))
    np.testing.assert_allclose(f(xv), want, rtol=1e-5, atol=1e-6)


@pytest.mark.compiles
def test_a_vae_with_gated_layers_gets_gradients_for_both_halves():
    model = make_vae(nvis=10, nhid=2, hidden=6, layer=GatedLinear)
    x = pt.matrix("x", dtype="float32")
    cost = -model.log_likelihood_lower_bound(x, num_samples=1).mean()
    weights = [p for p in model.get_params() if p.name.endswith("h_1_W")]
    (grad,) = pt.grad(cost, weights)
    g = pytensor.function([x], grad, mode="FAST_COMPILE")(binary_data(8, 10))
    assert g.shape == (2, 12)
    assert np.abs(g[:, :6]).sum() > 0 and np.abs(g[:, 6:]).sum() > 0
