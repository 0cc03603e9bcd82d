"""Branches (one layer per piece of the input) and DiagonalGaussian's log_sigma_range."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pylearn_vae.models.mlp import MLP, Branches, GatedLinear, Linear, Tanh
from pylearn_vae.models.vae.conditional import DiagonalGaussian, HouseholderFlowGaussian
from pylearn_vae.space import VectorSpace
from tests.helpers.models import make_vae


def _branches(widths=(3, 2), name="b"):
    return Branches(
        layer_name=name,
        widths=list(widths),
        layers=[
            Tanh(layer_name=f"{name}_x", dim=4, irange=0.5, init_bias=0.1),
            GatedLinear(layer_name=f"{name}_z", dim=2, irange=0.5),
        ],
    )


@pytest.mark.compiles
def test_each_piece_goes_through_its_own_layer_and_the_outputs_are_joined():
    layer = _branches()
    mlp = MLP(layers=[layer, Linear(layer_name="top", dim=1, irange=0.3)], nvis=5, seed=0)
    assert layer.get_output_space() == VectorSpace(6)
    assert [p.name for p in mlp.get_params()] == [
        "b_x_W",
        "b_x_b",
        "b_z_W",
        "b_z_b",
        "top_W",
        "top_b",
    ]
    Wx, bx, Wz, bz, Wt, bt = (p.get_value().astype("float64") for p in mlp.get_params())
    assert Wx.shape == (3, 4) and Wz.shape == (2, 4)
    x = pt.matrix("x", dtype="float32")
    f = pytensor.function([x], mlp.fprop(x), mode="FAST_COMPILE")
    xv = np.random.default_rng(0).standard_normal((7, 5)).astype("float32")
    gate = xv[:, 3:] @ Wz + bz
    joined = np.concatenate(
        [np.tanh(xv[:, :3] @ Wx + bx), gate[:, :2] / (1 + np.exp(-gate[:, 2:]))], axis=1
    )
    np.testing.assert_allclose(f(xv), joined @ Wt + bt, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("widths", "layers", "match"),
    [
        ([], 0, "non-empty list"),
        ([3, 0], 2, "positive integers"),
        ([3, True], 2, "positive integers"),
        ("3,2", 2, "non-empty list"),
        ([3, 2], 1, "2 widths but 1 layers"),
    ],
)
def test_bad_widths_are_refused_with_the_layer_named(widths, layers, match):
    parts = [Tanh(layer_name=f"p{i}", dim=2, irange=0.1) for i in range(layers)]
    with pytest.raises(ValueError, match=match) as caught:
        Branches(layer_name="split", widths=widths, layers=parts)
    assert "'split'" in str(caught.value)


def test_widths_that_do_not_add_up_to_the_input_are_refused():
    with pytest.raises(ValueError, match=r"add up to 5, but the input has 6 units"):
        MLP(layers=[_branches()], nvis=6, seed=0)


def test_a_nested_layer_name_used_twice_is_refused():
    with pytest.raises(ValueError, match="two layers are named 'b_x'"):
        MLP(layers=[_branches(), Tanh(layer_name="b_x", dim=2, irange=0.1)], nvis=5, seed=0)
    twins = [Tanh(layer_name="same", dim=2, irange=0.1) for _ in range(2)]
    with pytest.raises(ValueError, match="two layers are named 'same'"):
        MLP(layers=[Branches(layer_name="b", widths=[3, 2], layers=twins)], nvis=5, seed=0)


def test_groups_named_alike_are_accepted_when_their_parameters_are_not():
    """Two nested MLPs keep the default name 'mlp'; only their layers name parameters."""
    towers = [MLP(layers=[Tanh(layer_name=f"t{i}", dim=2, irange=0.1)]) for i in range(2)]
    mlp = MLP(layers=[Branches(layer_name="b", widths=[3, 2], layers=towers)], nvis=5, seed=0)
    assert [p.name for p in mlp.get_params()] == ["t0_W", "t0_b", "t1_W", "t1_b"]


def _gaussian(log_sigma_range, cls=DiagonalGaussian, **kwargs):
    mlp = MLP(layer_name="net", layers=[Tanh(layer_name="h", dim=3, irange=0.1)])
    return cls(mlp=mlp, name="q", log_sigma_range=log_sigma_range, **kwargs)


def _encoded_with_large_weights(q):
    for head in ("mu", "log_sigma"):  # outputs far outside the range
        layer = next(part for part in q.mlp.layers[-1].layers if part.layer_name == head)
        layer.W.set_value(np.full_like(layer.W.get_value(), 40.0))
    x = pt.matrix("x", dtype="float32")
    f = pytensor.function([x], list(q.encode_conditional_params(x)[:2]), mode="FAST_COMPILE")
    return f(np.random.default_rng(1).standard_normal((50, 4)).astype("float32"))


@pytest.mark.compiles
@pytest.mark.parametrize("cls", [DiagonalGaussian, HouseholderFlowGaussian])
def test_log_sigma_is_clipped_to_its_range_and_the_mean_is_not(cls):
    q = make_vae(nvis=4, nhid=3, posterior=_gaussian([-0.5, 0.25], cls)).posterior
    mu, log_sigma = _encoded_with_large_weights(q)
    assert log_sigma.min() == np.float32(-0.5) and log_sigma.max() == np.float32(0.25)
    assert np.abs(mu).max() > 1.0  # the mean head is left alone


@pytest.mark.compiles
def test_without_a_range_log_sigma_is_the_networks_own():
    q = make_vae(nvis=4, nhid=3, posterior=_gaussian(None)).posterior
    _, log_sigma = _encoded_with_large_weights(q)
    assert log_sigma.min() < -1.0 and log_sigma.max() > 1.0


@pytest.mark.parametrize(
    "bad",
    [
        [1.0],
        [1.0, 0.0],
        [0.0, 0.0],
        ["a", 1.0],
        [0.0, float("inf")],
        [float("nan"), 0.0],
        [-1e39, 1e39],  # (finite as Python floats, infinite in float32)
        [80.0, 90.0],
        [0.0, 1e-45],  # (empty in float32)
        "ab",
        3.0,
        [True, 2],
    ],
)
def test_a_bad_log_sigma_range_is_refused_naming_the_network(bad):
    with pytest.raises(ValueError, match=r"DiagonalGaussian 'q' log_sigma_range"):
        _gaussian(bad)


_MODEL_YAML = """
!obj:pylearn_vae.models.vae.hierarchical.HierarchicalVAE {
    nvis: 6, nhid: 2, bottom_nhid: 3, seed: 4,
    prior: !obj:pylearn_vae.models.vae.prior.DiagonalGaussianPrior {},
    posterior: !obj:pylearn_vae.models.vae.conditional.DiagonalGaussian {
        name: 'posterior', log_sigma_range: [-3, 1],
        mlp: !obj:pylearn_vae.models.mlp.MLP {
            layer_name: 'q2', layers: [
                !obj:pylearn_vae.models.mlp.Tanh { layer_name: 'h', dim: 5, irange: 0.3 }],
        },
    },
    bottom_posterior: !obj:pylearn_vae.models.vae.conditional.DiagonalGaussian {
        name: 'bottom_posterior', log_sigma_range: [-2.5, 0.5],
        mlp: !obj:pylearn_vae.models.mlp.MLP {
            layer_name: 'q1', layers: [
                !obj:pylearn_vae.models.mlp.Branches {
                    layer_name: 'h', widths: [6, 2], layers: [
                        !obj:pylearn_vae.models.mlp.GatedLinear { layer_name: 'h_x', dim: 4, istdev: 0.3 },
                        !obj:pylearn_vae.models.mlp.GatedLinear { layer_name: 'h_z2', dim: 4, istdev: 0.3 },
                    ],
                },
                !obj:pylearn_vae.models.mlp.Tanh { layer_name: 'h_2', dim: 5, irange: 0.3 },
            ],
        },
    },
    bottom_prior: !obj:pylearn_vae.models.vae.conditional.DiagonalGaussian {
        name: 'bottom_prior',
        mlp: !obj:pylearn_vae.models.mlp.MLP {
            layer_name: 'p1', layers: [
                !obj:pylearn_vae.models.mlp.Tanh { layer_name: 'h', dim: 5, irange: 0.3 }],
        },
    },
    conditional: !obj:pylearn_vae.models.vae.conditional.BernoulliVector {
        name: 'conditional',
        mlp: !obj:pylearn_vae.models.mlp.MLP {
            layer_name: 'px', layers: [
                !obj:pylearn_vae.models.mlp.Branches {
                    layer_name: 'h', widths: [3, 2], layers: [
                        !obj:pylearn_vae.models.mlp.Tanh { layer_name: 'h_z1', dim: 4, irange: 0.3 },
                        !obj:pylearn_vae.models.mlp.Tanh { layer_name: 'h_z2', dim: 2, irange: 0.3 },
                    ],
                },
            ],
        },
    },
}
"""


def _outputs(model, inputs: dict) -> list:
    """Every network's parameters for the given inputs, computed."""
    graphs = [
        *model.posterior.encode_conditional_params(pt.constant(inputs["x"])),
        *model.bottom_posterior.encode_conditional_params(pt.constant(inputs["x_z2"])),
        *model.conditional.encode_conditional_params(pt.constant(inputs["z1_z2"])),
    ]
    return pytensor.function([], graphs, mode="FAST_COMPILE")()


@pytest.mark.compiles
def test_a_model_file_keeps_the_branches_and_the_ranges(tmp_path):
    from pylearn_vae import persistence
    from pylearn_vae.config import yaml_parse

    model = yaml_parse.load(_MODEL_YAML)
    for param in model.get_params():  # away from the values the YAML's seed gives
        value = param.get_value()
        param.set_value(
            value + np.linspace(-2, 2, value.size, dtype=value.dtype).reshape(value.shape)
        )
    persistence.save(tmp_path / "m.h5", model)
    loaded = persistence.load(tmp_path / "m.h5")
    assert loaded.posterior.log_sigma_range == (-3.0, 1.0)
    assert loaded.bottom_posterior.log_sigma_range == (-2.5, 0.5)
    assert loaded.bottom_prior.log_sigma_range is None
    assert loaded.conditional.mlp.layers[0].widths == [3, 2]
    rng = np.random.default_rng(3)
    inputs = {
        "x": rng.integers(0, 2, (9, 6)).astype("float32"),
        "x_z2": rng.standard_normal((9, 8)).astype("float32") * 3,
        "z1_z2": rng.standard_normal((9, 5)).astype("float32") * 3,
    }
    saved, reloaded = _outputs(model, inputs), _outputs(loaded, inputs)
    for a, b in zip(saved, reloaded, strict=True):
        np.testing.assert_array_equal(a, b)
    assert saved[1].min() == -3.0 or saved[1].max() == 1.0  # the range is in use
    assert saved[3].min() >= -2.5 and saved[3].max() <= 0.5


def test_a_gaussian_pickled_before_the_range_existed_has_none():
    q = _gaussian([-1.0, 1.0])
    del q.__dict__["log_sigma_range"]  # as an older pickle restores it
    assert q.log_sigma_range is None


def _pickled(tmp_path, forge) -> object:
    """The model of ``_MODEL_YAML`` with ``forge(model)`` applied, saved as .pkl and loaded."""
    from pylearn_vae import persistence
    from pylearn_vae.config import yaml_parse

    model = yaml_parse.load(_MODEL_YAML)
    forge(model)
    persistence.save(tmp_path / "m.pkl", model)
    return persistence.load(tmp_path / "m.pkl")


def test_a_pickled_model_keeps_its_branches_and_ranges(tmp_path):
    loaded = _pickled(tmp_path, lambda model: None)
    assert loaded.posterior.log_sigma_range == (-3.0, 1.0)
    assert loaded.conditional.mlp.layers[0].widths == [3, 2]


@pytest.mark.parametrize(
    ("attribute", "value", "match"),
    [
        ("log_sigma_range", (1.0, -1.0), r"DiagonalGaussian 'posterior' log_sigma_range needs low"),
        ("log_sigma_range", "ab", r"log_sigma_range must be a pair"),
        ("log_sigma_range", (float("nan"), 0.0), r"log_sigma_range must hold two numbers from"),
        ("log_sigma_range", (-3.0, 1.0, 2.0), r"log_sigma_range must be a pair"),
        ("widths", "ab", r"Branches 'h': widths must be a non-empty list"),
        ("widths", None, r"Branches 'h': widths must be a non-empty list"),
        ("widths", [3.5, 1.5], r"Branches 'h': widths must be positive integers"),
        ("widths", [5], r"Branches 'h': 1 widths but 2 layers"),
        ("widths", [-392, 397], r"Branches 'h': widths must be positive integers"),
        ("widths", [4, 1], r"Branches 'h': layer 'h_z1' reads 3 units, but its piece has 4"),
        ("widths", [10**12, 2], r"Branches 'h': widths \[1000000000000, 2\] add up to"),
    ],
)
def test_a_forged_pickle_is_refused_as_the_constructor_refuses_it(
    tmp_path, attribute, value, match
):
    from pylearn_vae.persistence import ModelFileError

    def forge(model):
        target = (
            model.posterior if attribute == "log_sigma_range" else model.conditional.mlp.layers[0]
        )
        target.__dict__[attribute] = value

    with pytest.raises(ModelFileError, match=match):
        _pickled(tmp_path, forge)
