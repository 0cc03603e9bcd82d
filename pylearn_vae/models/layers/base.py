"""The ``Layer`` base class shared by MLP layers."""

from __future__ import annotations

from collections import OrderedDict

from pylearn_vae.models.model import Model

__all__ = ["Layer"]


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
