"""``CompositeLayer``: several layers applied to the same input."""

from __future__ import annotations

from pylearn_vae.config.keywords import pylearn2_keywords
from pylearn_vae.models.layers.base import LayerGroup
from pylearn_vae.space import CompositeSpace

__all__ = ["CompositeLayer"]


class CompositeLayer(LayerGroup):
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
        self._hold(layers)

    def set_input_space(self, space) -> None:
        self.input_space = space
        for layer in self.layers:
            layer.set_input_space(space)
        self.output_space = CompositeSpace([layer.get_output_space() for layer in self.layers])

    def fprop(self, state_below):
        return tuple(layer.fprop(state_below) for layer in self.layers)
