"""The ``Layer`` base class shared by MLP layers."""

from __future__ import annotations

from collections import OrderedDict

from pylearn_vae.models.model import Model

__all__ = ["Layer", "LayerGroup"]


class Layer(Model):
    """A layer of an :class:`~pylearn_vae.models.mlp.MLP`.

    A layer learns its input space from its owner through
    :meth:`set_input_space`, which is also where it allocates parameters.
    """

    def __init__(self, layer_name: str) -> None:
        super().__init__()
        if not isinstance(layer_name, str) or not layer_name:
            raise ValueError(f"layer_name must be a non-empty string, got {layer_name!r}")
        self.layer_name = layer_name
        self.output_space = None
        self._mlp = None

    def set_mlp(self, mlp) -> None:
        """Attach this layer to its owning MLP (once)."""
        if self._mlp is not None and self._mlp is not mlp:
            raise RuntimeError(f"layer {self.layer_name!r} already belongs to another MLP")
        self._mlp = mlp

    def get_mlp(self):
        return self._mlp

    @property
    def mlp(self):
        return self._mlp

    @property
    def rng(self):
        if self._mlp is None:
            raise RuntimeError(
                f"layer {self.layer_name!r} is not part of an MLP yet, so it has no "
                "random generator to initialise its parameters"
            )
        return self._mlp.rng

    def set_input_space(self, space) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement set_input_space")

    def get_output_space(self):
        if self.output_space is None:
            raise RuntimeError(
                f"layer {self.layer_name!r} has no output space until its input space is set"
            )
        return self.output_space

    def fprop(self, state_below):
        raise NotImplementedError(f"{type(self).__name__} does not implement fprop")

    def get_lr_scalers(self) -> OrderedDict:
        return OrderedDict()


class LayerGroup(Layer):
    """A layer made of the layers in ``self.layers`` (an MLP, a composite):
    their parameters, learning-rate scalers and update constraints are its own."""

    layers: list

    def _hold(self, layers: list) -> None:
        """Keep ``layers`` as this group's parts (each must be a Layer)."""
        for layer in layers:
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"{type(self).__name__} {self.layer_name!r}: {layer!r} is not a Layer"
                )
        self.layers = list(layers)

    def set_mlp(self, mlp) -> None:
        super().set_mlp(mlp)
        for layer in self.layers:
            layer.set_mlp(mlp)

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
