"""Layers of an MLP, one concept per module, re-exported here."""

from pylearn_vae.models.layers.base import Layer, LayerGroup
from pylearn_vae.models.layers.branches import Branches
from pylearn_vae.models.layers.composite import CompositeLayer
from pylearn_vae.models.layers.conv import (
    ConvElemwise,
    ConvRectifiedLinear,
    IdentityConvNonlinearity,
    RectifierConvNonlinearity,
    SigmoidConvNonlinearity,
    SpaceConverter,
    TanhConvNonlinearity,
)
from pylearn_vae.models.layers.deconv import Deconv
from pylearn_vae.models.layers.linear import (
    GatedLinear,
    Linear,
    RectifiedLinear,
    Sigmoid,
    Softplus,
    Tanh,
)

__all__ = [
    "Layer",
    "LayerGroup",
    "Linear",
    "RectifiedLinear",
    "Sigmoid",
    "Tanh",
    "Softplus",
    "GatedLinear",
    "CompositeLayer",
    "Branches",
    "SpaceConverter",
    "ConvElemwise",
    "ConvRectifiedLinear",
    "Deconv",
    "IdentityConvNonlinearity",
    "RectifierConvNonlinearity",
    "SigmoidConvNonlinearity",
    "TanhConvNonlinearity",
]
