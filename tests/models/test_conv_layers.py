"""Convolutional layers: spaces, parameters, numbers, errors, and a convolutional VAE encoder."""

from collections import OrderedDict

import numpy as np
import pytensor.tensor as pt
import pytest
from scipy import signal

from pylearn_vae.compile import function
from pylearn_vae.errors import UnsupportedOptionError
from pylearn_vae.models.mlp import (
    MLP,
    ConvElemwise,
    ConvRectifiedLinear,
    Linear,
    SpaceConverter,
    TanhConvNonlinearity,
)
from pylearn_vae.models.vae import VAE
from pylearn_vae.models.vae.conditional import BernoulliVector, DiagonalGaussian
from pylearn_vae.models.vae.prior import DiagonalGaussianPrior
from pylearn_vae.space import Conv2DSpace, VectorSpace
from pylearn_vae.utils.rng import make_np_rng


def conv_mlp(layer=ConvRectifiedLinear, **conv_kwargs):
    """A top-level MLP: 4x5 images as vectors -> SpaceConverter -> ``layer``."""
    kwargs = dict(
        layer_name="h",
        output_channels=3,
        kernel_shape=[2, 3],
        kernel_stride=[1, 1],
        pool_shape=[2, 2],
        pool_stride=[1, 1],
        pool_type="max",
        irange=0.5,
    )
    kwargs.update(conv_kwargs)
    return MLP(
        nvis=40,
        layers=[
            SpaceConverter("to_images", Conv2DSpace(shape=[4, 5], num_channels=2)),
            layer(**kwargs),
        ],
    )


def test_spaces_and_parameter_shapes():
    mlp = conv_mlp()
    conv = mlp.layers[1]
    assert conv.detector_space == Conv2DSpace([3, 3], num_channels=3, axes=("b", "c", 0, 1))
    assert mlp.get_output_space() == Conv2DSpace([2, 2], num_channels=3, axes=("b", "c", 0, 1))
    assert conv.W.get_value().shape == (3, 2, 2, 3)
    assert conv.b.get_value().shape == (3, 3, 3)  # untied: one bias per position
    assert [p.name for p in mlp.get_params()] == ["h_W", "h_b"]
    assert conv.get_weights_topo().shape == (3, 2, 3, 2)
    tied = conv_mlp(tied_b=True, pool_type=None, kernel_stride=[2, 2]).layers[1]
    assert tied.b.get_value().shape == (3,)
    assert tied.get_output_space().shape == (2, 2)


class _ChannelwiseRectifier:
    """Not marked elementwise: KernelLayer.detector hands it (b, c, rows, cols)."""

    def apply(self, z):
        assert z.type.shape[1] == 3  # channels second
        return pt.maximum(z, 0.0)


@pytest.mark.parametrize(
    "options",
    [{}, {"tied_b": True}, {"nonlinearity": _ChannelwiseRectifier()}],
    ids=["untied biases", "tied biases", "nonlinearity not marked elementwise"],
)
@pytest.mark.compiles
def test_fprop_matches_a_direct_computation(options):
    layer = ConvElemwise if "nonlinearity" in options else ConvRectifiedLinear
    mlp = conv_mlp(
        layer, pool_type="mean", pool_shape=[2, 2], pool_stride=[1, 1], init_bias=0.1, **options
    )
    conv = mlp.layers[1]
    conv.b.set_value(
        np.random.default_rng(1).normal(size=conv.b.get_value().shape).astype("float32")
    )
    X = pt.matrix("X", dtype="float32")
    f = function([X], mlp.fprop(X))
    rng = np.random.default_rng(0)
    data = rng.normal(size=(2, 40)).astype("float32")
    images = data.reshape(2, 4, 5, 2).transpose(0, 3, 1, 2)  # ('b', 0, 1, 'c') flattening
    W, b = conv.W.get_value(), conv.b.get_value()
    z = np.array(
        [
            [
                sum(signal.convolve2d(img[i], W[o, i], mode="valid") for i in range(2))
                for o in range(3)
            ]
            for img in images
        ]
    ) + (b[:, None, None] if b.ndim == 1 else b)
    d = np.maximum(z, 0)
    pooled = (d[:, :, :-1, :-1] + d[:, :, 1:, :-1] + d[:, :, :-1, 1:] + d[:, :, 1:, 1:]) / 4
    np.testing.assert_allclose(f(data), pooled, rtol=1e-5, atol=1e-6)


@pytest.mark.compiles
def test_max_kernel_norm_and_lr_scalers():
    conv = conv_mlp(max_kernel_norm=0.1, W_lr_scale=0.5, b_lr_scale=2.0).layers[1]
    assert list(conv.get_lr_scalers().values()) == [0.5, 2.0]
    updates = OrderedDict([(conv.W, conv.W * 10.0)])
    conv.modify_updates(updates)
    new_W = function([], updates[conv.W])()
    np.testing.assert_allclose(np.sqrt((new_W**2).sum(axis=(1, 2, 3))), 0.1, rtol=1e-5)


def test_linear_after_a_conv_layer_flattens_its_input():
    mlp = MLP(
        nvis=40,
        layers=[
            SpaceConverter("to_images", Conv2DSpace(shape=[4, 5], num_channels=2)),
            ConvElemwise(
                output_channels=1,
                kernel_shape=[1, 1],
                layer_name="c",
                nonlinearity=TanhConvNonlinearity(),
                irange=0.5,
            ),
            Linear(layer_name="out", dim=3, irange=0.5),
        ],
    )
    assert mlp.layers[2].W.get_value().shape == (20, 3)
    assert mlp.get_output_space() == VectorSpace(3)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="give irange"):
        ConvRectifiedLinear(2, [2, 2], [1, 1], [1, 1], "h")
    with pytest.raises(UnsupportedOptionError, match="sparse_init"):
        ConvRectifiedLinear(2, [2, 2], [1, 1], [1, 1], "h", irange=0.1, sparse_init=3)
    with pytest.raises(ValueError, match="pool_type must be 'max', 'mean' or None"):
        ConvRectifiedLinear(2, [2, 2], [1, 1], [1, 1], "h", irange=0.1, pool_type="min")
    with pytest.raises(ValueError, match="kernel_shape must be two positive integers"):
        ConvRectifiedLinear(2, [2], [1, 1], [1, 1], "h", irange=0.1)
    with pytest.raises(TypeError, match="expects a Conv2DSpace input"):
        MLP(nvis=4, layers=[ConvRectifiedLinear(2, [2, 2], [1, 1], [1, 1], "h", irange=0.1)])
    with pytest.raises(ValueError, match="cannot turn VectorSpace"):
        MLP(nvis=5, layers=[SpaceConverter("s", Conv2DSpace([2, 2], num_channels=1))])
    with pytest.raises(ValueError, match="does not fit"):
        conv_mlp(kernel_shape=[5, 5])


@pytest.mark.compiles
def test_vae_allows_convolutional_encoding_networks():
    """Pylearn2's scenario: a SpaceConverter and a ConvRectifiedLinear encoder,
    a 10-sample lower bound on 4x4 inputs."""
    encoder = MLP(
        layers=[
            SpaceConverter(
                layer_name="conv2d_converter",
                output_space=Conv2DSpace(shape=[4, 4], num_channels=1),
            ),
            ConvRectifiedLinear(
                layer_name="h",
                output_channels=2,
                kernel_shape=[2, 2],
                kernel_stride=[1, 1],
                pool_shape=[1, 1],
                pool_stride=[1, 1],
                pool_type="max",
                irange=0.01,
            ),
        ]
    )
    decoder = MLP(layers=[Linear(layer_name="h", dim=16, irange=0.01)])
    vae = VAE(
        nvis=16,
        nhid=16,
        prior=DiagonalGaussianPrior(),
        conditional=BernoulliVector(mlp=decoder, name="conditional"),
        posterior=DiagonalGaussian(mlp=encoder, name="posterior"),
    )
    X = pt.matrix("X", dtype="float32")
    f = function([X], vae.log_likelihood_lower_bound(X, num_samples=10))
    data = make_np_rng(default_seed=11223).uniform(size=(10, 16)).astype("float32")
    bound = f(data)
    assert bound.shape == (10,)
    # Tiny weights: p(x|z) ~ Bernoulli(1/2) per pixel and KL ~ 0, so the
    # bound is close to 16 log(1/2) for every example.
    np.testing.assert_allclose(bound, 16 * np.log(0.5), rtol=0.02)


@pytest.mark.compiles
def test_vae_decoder_can_grow_images_with_full_convolutions():
    """z (16) -> 2x2x4 images -> 'full' 3x3 convolution -> 4x4x2 -> Bernoulli means (16)."""
    decoder = MLP(
        layers=[
            SpaceConverter("to_images", Conv2DSpace(shape=[2, 2], num_channels=4)),
            ConvRectifiedLinear(
                layer_name="up",
                output_channels=2,
                kernel_shape=[3, 3],
                pool_shape=None,
                pool_stride=None,
                pool_type=None,
                border_mode="full",
                irange=0.01,
            ),
        ]
    )
    vae = VAE(
        nvis=16,
        nhid=16,
        prior=DiagonalGaussianPrior(),
        conditional=BernoulliVector(mlp=decoder, name="conditional"),
        posterior=DiagonalGaussian(
            mlp=MLP(layers=[Linear(layer_name="e", dim=8, irange=0.01)]), name="posterior"
        ),
    )
    assert decoder.layers[1].get_output_space().shape == (4, 4)
    X = pt.matrix("X", dtype="float32")
    f = function([X], vae.log_likelihood_lower_bound(X, num_samples=2))
    bound = f(make_np_rng(default_seed=3).uniform(size=(5, 16)).astype("float32"))
    np.testing.assert_allclose(bound, 16 * np.log(0.5), rtol=0.02)


@pytest.mark.compiles
def test_stacked_convolutions_pass_channels_last_arrays_without_copies():
    # KernelLayer.detector applies the bias and nonlinearity to the matrix
    # product's channels-last array, so the next layer's Im2Col reads that
    # array itself rather than a transposed view (a strided read) or a copy.
    def conv(name, channels):
        return ConvRectifiedLinear(
            output_channels=channels,
            kernel_shape=[3, 3],
            kernel_stride=[2, 2],
            pool_shape=None,
            pool_stride=None,
            pool_type=None,
            layer_name=name,
            irange=0.1,
            border_mode="half",
        )

    mlp = MLP(
        nvis=64,
        layers=[
            SpaceConverter("to_images", Conv2DSpace(shape=[8, 8], num_channels=1)),
            conv("c1", 4),
            conv("c2", 5),
        ],
    )
    X = pt.matrix("X", dtype="float32")
    cost = mlp.fprop(X).sum()
    f = function([X], [cost, *pt.grad(cost, mlp.get_params())])
    nodes = f.maker.fgraph.toposort()
    patches = [n for n in nodes if type(n.op).__name__ in ("Im2Col", "Col2Im")]
    assert len(patches) >= 3
    for node in patches:
        owner = node.inputs[0].owner
        order = getattr(owner.op, "new_order", None) if owner is not None else None
        assert order is None or list(order) == sorted(order), (node, owner)
    values = f(np.random.default_rng(0).random((3, 64)).astype("float32"))
    assert all(np.isfinite(v).all() for v in values)
