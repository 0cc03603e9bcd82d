"""``CompositeLayer``: several layers applied to the same input."""

from __future__ import annotations

from collections import OrderedDict

from pylearn_vae.config.keywords import pylearn2_keywords
from pylearn_vae.models.layers.base import Layer
from pylearn_vae.space import CompositeSpace

__all__ = ["CompositeLayer"]


class CompositeLayer(Layer):
    """Apply each of ``layers`` to the input; output the tuple of results.

    Used by Gaussian conditionals to produce a mean and a log standard
    deviation from the same hidden representation.
    """

    @pylearn2_keywords
    def __init__(self, layer_name: str, layers, inputs_to_layers=None) -> None:
        super().__init__(layer_name)
        layers = list(layers)
        if not layers:
            raise ValueError(f"CompositeLayer {layer_name!r} needs at least one layer")
        for layer in layers:
            if not isinstance(layer, Layer):
                raise TypeError(f"CompositeLayer {layer_name!r}: {layer!r} is not a Layer")
        self.layers = layers

    def set_mlp(self, mlp) -> None:
        super().set_mlp(mlp)
        for layer in self.layers:
            layer.set_mlp(mlp)

    def set_input_space(self, space) -> None:
        self.input_space = space
        for layer in self.layers:
            layer.set_input_space(space)
        self.output_space = CompositeSpace([layer.get_output_space() for layer in self.layers])

    def get_params(self) -> list:
        return [p for layer in self.layers for p in layer.get_params()]

    def get_lr_scalers(self) -> OrderedDict:
        rval = OrderedDict()
        for layer in self.layers:
            rval.update(layer.get_lr_scalers())
        return rval

    def _modify_updates(self, updates) -> None:
        for layer in self.layers:
            layer.modify_updates(updates)

    def get_weights(self):
        return self.layers[0].get_weights()

    def fprop(self, state_below):
        return tuple(layer.fprop(state_below) for layer in self.layers)
