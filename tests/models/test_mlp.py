"""MLP and layers: initialisation, options, constraints, composition."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pylearn_vae.errors import UnsupportedOptionError
from pylearn_vae.models.mlp import (
    MLP,
    CompositeLayer,
    Linear,
    RectifiedLinear,
    Sigmoid,
    Softplus,
    Tanh,
)
from pylearn_vae.space import CompositeSpace, VectorSpace


@pytest.mark.compiles
def test_top_level_mlp_initialises_and_computes():
    mlp = MLP(
        nvis=4,
        seed=1,
        layers=[
            RectifiedLinear(layer_name="r", dim=3, irange=0.5, init_bias=0.1),
            Sigmoid(layer_name="s", dim=2, istdev=0.3),
            Tanh(layer_name="t", dim=2, irange=0.2),
            Softplus(layer_name="p", dim=2, irange=0.2),
        ],
    )
    assert not mlp._nested
    assert [p.name for p in mlp.get_params()] == [
        "r_W",
        "r_b",
        "s_W",
        "s_b",
        "t_W",
        "t_b",
        "p_W",
        "p_b",
    ]
    W = mlp.layers[0].W.get_value()
    assert W.shape == (4, 3) and np.abs(W).max() <= 0.5 and W.dtype == np.float32
    np.testing.assert_allclose(mlp.layers[0].b.get_value(), 0.1)
    X = pt.matrix(dtype="float32")
    out = pytensor.function([X], mlp.fprop(X))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype("float32")
    values = [p.get_value() for p in mlp.get_params()]
    h = np.maximum(x @ values[0] + values[1], 0)
    h = 1 / (1 + np.exp(-(h @ values[2] + values[3])))
    h = np.tanh(h @ values[4] + values[5])
    h = np.log1p(np.exp(h @ values[6] + values[7]))
    np.testing.assert_allclose(out(x), h, rtol=1e-5, atol=1e-6)


def test_same_seed_same_weights():
    def weights(seed):
        return (
            MLP(nvis=3, seed=seed, layers=[Linear(layer_name="l", dim=2, irange=1.0)])
            .layers[0]
            .W.get_value()
        )

    np.testing.assert_array_equal(weights(4), weights(4))
    assert not np.allclose(weights(4), weights(5))


def test_initialisation_options_are_checked():
    with pytest.raises(ValueError, match="exactly one of 'irange' or 'istdev'.*neither"):
        Linear(layer_name="l", dim=2)
    with pytest.raises(ValueError, match="got irange, istdev"):
        Linear(layer_name="l", dim=2, irange=0.1, istdev=0.1)
    with pytest.raises(ValueError, match="dim must be a positive integer, got 0"):
        Linear(layer_name="l", dim=0, irange=0.1)


def test_unsupported_pylearn2_option_is_an_error_naming_it():
    with pytest.raises(UnsupportedOptionError, match="'sparse_init'"):
        Linear(layer_name="l", dim=2, irange=0.1, sparse_init=15)
    with pytest.raises(UnsupportedOptionError, match="'include_prob'"):
        RectifiedLinear(layer_name="l", dim=2, irange=0.1, include_prob=0.5)
    with pytest.raises(UnsupportedOptionError, match="'inputs_to_layers'"):
        CompositeLayer(
            layer_name="c",
            layers=[Linear(layer_name="l", dim=2, irange=0.1)],
            inputs_to_layers={0: [0]},
        )


def test_lr_scalers_and_duplicate_layer_names():
    mlp = MLP(
        nvis=3, layers=[Linear(layer_name="l", dim=2, irange=0.1, W_lr_scale=0.5, b_lr_scale=2.0)]
    )
    scalers = mlp.get_lr_scalers()
    assert scalers[mlp.layers[0].W] == 0.5 and scalers[mlp.layers[0].b] == 2.0
    with pytest.raises(ValueError, match="two layers are named 'l'"):
        MLP(
            nvis=3,
            layers=[
                Linear(layer_name="l", dim=2, irange=0.1),
                Linear(layer_name="l", dim=2, irange=0.1),
            ],
        )


@pytest.mark.compiles
def test_max_col_norm_constrains_updates():
    mlp = MLP(nvis=3, layers=[Linear(layer_name="l", dim=2, irange=0.1, max_col_norm=1.0)])
    W = mlp.layers[0].W
    updates = {W: W * np.float32(100.0)}
    mlp.modify_updates(updates)
    f = pytensor.function([], updates[W])
    norms = np.sqrt((f() ** 2).sum(axis=0))
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


@pytest.mark.compiles
def test_composite_layer_outputs_tuple():
    mlp = MLP(
        nvis=3,
        layers=[
            CompositeLayer(
                layer_name="c",
                layers=[
                    Linear(layer_name="a", dim=2, irange=0.1),
                    Linear(layer_name="b", dim=4, irange=0.1),
                ],
            )
        ],
    )
    assert mlp.get_output_space() == CompositeSpace([VectorSpace(2), VectorSpace(4)])
    X = pt.matrix(dtype="float32")
    a, b = pytensor.function([X], list(mlp.fprop(X)))(np.ones((5, 3), "float32"))
    assert a.shape == (5, 2) and b.shape == (5, 4)


def test_nested_mlp_rules():
    nested = MLP(layers=[Linear(layer_name="l", dim=2, irange=0.1)])
    assert nested._nested
    top = MLP(nvis=2, layers=[Linear(layer_name="l", dim=2, irange=0.1)])
    with pytest.raises(ValueError, match="cannot be nested"):
        top.set_mlp(object())
    with pytest.raises(ValueError, match="nvis or input_space, not both"):
        MLP(nvis=2, input_space=VectorSpace(2), layers=[Linear(layer_name="l", dim=2, irange=0.1)])
