"""The Deconv layer: spaces, numbers against NumPy loops, gradients, errors, and a
convolutional VAE whose decoder goes back up with it."""

from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pylearn_vae.compile import function
from pylearn_vae.errors import UnsupportedOptionError
from pylearn_vae.models.mlp import (
    MLP,
    ConvRectifiedLinear,
    Deconv,
    RectifiedLinear,
    RectifierConvNonlinearity,
    SpaceConverter,
)
from pylearn_vae.models.vae import VAE
from pylearn_vae.models.vae.conditional import BernoulliVector, DiagonalGaussian
from pylearn_vae.models.vae.prior import DiagonalGaussianPrior
from pylearn_vae.space import Conv2DSpace, VectorSpace
from tests.helpers.references import reference_transpose


def deconv_mlp(**kwargs):
    """3x2 maps with 2 channels (as vectors) -> Deconv with 3x3 kernels, stride 2."""
    options = dict(
        layer_name="up",
        num_channels=3,
        kernel_shape=[3, 3],
        output_stride=[2, 2],
        irange=0.5,
        init_bias=0.1,
    )
    options.update(kwargs)
    return MLP(
        nvis=12,
        layers=[
            SpaceConverter("to_maps", Conv2DSpace(shape=[3, 2], num_channels=2)),
            Deconv(**options),
        ],
    )


@pytest.fixture(scope="module")
def fprop_and_grads():
    """One compiled function: outputs of an untied and a tied layer, the
    gradients of a loss of the untied one, and that loss."""
    untied = deconv_mlp()
    tied = deconv_mlp(
        pad_out=1, tied_b=True, layer_name="t", nonlinearity=RectifierConvNonlinearity()
    )
    X = pt.matrix("X", dtype="float32")
    out = untied.fprop(X)
    loss = (out**2).sum() + (tied.fprop(X) ** 3).sum()
    layer = untied.layers[1]
    f = function([X], [out, tied.fprop(X), loss, *pytensor.grad(loss, [X, layer.W, layer.b])])
    return untied, tied, f


def maps(data):
    return data.reshape(-1, 3, 2, 2).transpose(0, 3, 1, 2)  # ('b', 0, 1, 'c') vectors


def test_spaces_and_parameters():
    mlp = deconv_mlp()
    layer = mlp.layers[1]
    # (3 - 1) * 2 + 3 = 7 rows, (2 - 1) * 2 + 3 = 5 columns.
    assert mlp.get_output_space() == Conv2DSpace([7, 5], num_channels=3, axes=("b", "c", 0, 1))
    assert layer.W.get_value().shape == (2, 3, 3, 3)
    assert layer.b.get_value().shape == (3, 7, 5)
    assert layer.get_weights_topo().shape == (2, 3, 3, 3)
    assert [p.name for p in mlp.get_params()] == ["up_W", "up_b"]
    cut = deconv_mlp(pad_out=1, tied_b=True).layers[1]
    assert cut.get_output_space().shape == (5, 3)
    assert cut.b.get_value().shape == (3,)


@pytest.mark.compiles
def test_fprop_matches_numpy_loops(fprop_and_grads):
    untied, tied, f = fprop_and_grads
    data = np.random.default_rng(0).normal(size=(2, 12)).astype("float32")
    out, out_tied = f(data)[:2]
    for mlp, got, pad in ((untied, out, 0), (tied, out_tied, 1)):
        layer = mlp.layers[1]
        shape = layer.get_output_space().shape
        z = reference_transpose(maps(data), layer.W.get_value(), shape, (2, 2), (pad, pad))
        b = layer.b.get_value()
        expected = z + (b[None, :, None, None] if layer.tied_b else b[None])
        if layer.tied_b:  # the tied layer is the rectified one
            expected = np.maximum(expected, 0.0)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.compiles
def test_gradients_match_finite_differences(fprop_and_grads):
    untied, _, f = fprop_and_grads
    layer = untied.layers[1]
    data = np.random.default_rng(1).normal(size=(2, 12)).astype("float32")
    _, _, _, gX, gW, gb = f(data)
    rng, h = np.random.default_rng(2), 1e-2
    direction = rng.normal(size=data.shape).astype("float32")
    numeric = (f(data + h * direction)[2] - f(data - h * direction)[2]) / (2 * h)
    np.testing.assert_allclose((gX * direction).sum(), numeric, rtol=2e-2)
    for param, grad in ((layer.W, gW), (layer.b, gb)):
        value = param.get_value()
        step = rng.normal(size=value.shape).astype("float32")
        param.set_value(value + h * step)
        plus = f(data)[2]
        param.set_value(value - h * step)
        minus = f(data)[2]
        param.set_value(value)
        np.testing.assert_allclose((grad * step).sum(), (plus - minus) / (2 * h), rtol=2e-2)


@pytest.mark.compiles
def test_max_kernel_norm_clips_each_output_channel():
    layer = deconv_mlp(max_kernel_norm=0.1, W_lr_scale=0.5).layers[1]
    assert list(layer.get_lr_scalers().values()) == [0.5]
    updates = OrderedDict([(layer.W, layer.W * 10.0)])
    layer.modify_updates(updates)
    new_W = function([], updates[layer.W])()
    np.testing.assert_allclose(np.sqrt((new_W**2).sum(axis=(0, 2, 3))), 0.1, rtol=1e-5)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="give irange"):
        Deconv(2, [2, 2], "d")
    with pytest.raises(ValueError, match="num_channels must be a positive integer"):
        Deconv(0, [2, 2], "d", irange=0.1)
    with pytest.raises(ValueError, match="pad_out must be a non-negative integer"):
        Deconv(2, [2, 2], "d", irange=0.1, pad_out=-1)
    with pytest.raises(ValueError, match="output_stride must be two positive integers"):
        Deconv(2, [2, 2], "d", irange=0.1, output_stride=[0, 1])
    with pytest.raises(UnsupportedOptionError, match="partial_sum"):
        Deconv(2, [2, 2], "d", irange=0.1, partial_sum=4)
    with pytest.raises(TypeError, match="apply"):
        Deconv(2, [2, 2], "d", irange=0.1, nonlinearity="relu")
    with pytest.raises(TypeError, match="expects a Conv2DSpace input"):
        MLP(nvis=4, layers=[Deconv(2, [2, 2], "d", irange=0.1)])
    with pytest.raises(ValueError, match="leaves no output pixels"):
        deconv_mlp(pad_out=3)


@pytest.mark.compiles
def test_convolutional_vae_with_a_deconv_decoder_trains_its_bound():
    """8x8 images: stride-2 convolution to 4x4x3 -> 2-d latent -> 4x4x3 maps ->
    Deconv back to 8x8 logits; the bound is near 64 log(1/2) with tiny weights
    and its gradient reaches every parameter."""
    encoder = MLP(
        layers=[
            SpaceConverter("to_image", Conv2DSpace([8, 8], num_channels=1)),
            ConvRectifiedLinear(
                layer_name="c",
                output_channels=3,
                kernel_shape=[4, 4],
                kernel_stride=[2, 2],
                border_mode=1,
                pool_type=None,
                pool_shape=None,
                pool_stride=None,
                irange=0.01,
            ),
        ]
    )
    decoder = MLP(
        layers=[
            RectifiedLinear(layer_name="d", dim=48, irange=0.01),
            SpaceConverter("to_maps", Conv2DSpace([4, 4], num_channels=3)),
            Deconv(
                layer_name="up",
                num_channels=1,
                kernel_shape=[4, 4],
                output_stride=[2, 2],
                pad_out=1,
                irange=0.01,
            ),
            SpaceConverter("to_pixels", VectorSpace(64)),
        ]
    )
    vae = VAE(
        nvis=64,
        nhid=2,
        prior=DiagonalGaussianPrior(),
        conditional=BernoulliVector(mlp=decoder, name="conditional", output_layer_required=False),
        posterior=DiagonalGaussian(mlp=encoder, name="posterior"),
    )
    X = pt.matrix("X", dtype="float32")
    bound = vae.log_likelihood_lower_bound(X, num_samples=2)
    grads = pytensor.grad(bound.mean(), vae.get_params())
    f = function([X], [bound, *[pt.abs(g).max() for g in grads]])
    data = (np.random.default_rng(4).random((5, 64)) < 0.3).astype("float32")
    value, *grad_sizes = f(data)
    np.testing.assert_allclose(value, 64 * np.log(0.5), rtol=0.02)
    assert all(size > 0 for size in grad_sizes), grad_sizes
