"""The multilayer perceptron, with Pylearn2's layer names re-exported.

Pylearn2 kept every layer in ``pylearn2/models/mlp.py``; here each layer
lives in :mod:`pylearn_vae.models.layers` and is re-exported from this
module so that ``!obj:pylearn_vae.models.mlp.RectifiedLinear`` works.
"""

from __future__ import annotations

from pylearn_vae.models.layers import (
    Branches,
    CompositeLayer,
    ConvElemwise,
    ConvRectifiedLinear,
    Deconv,
    GatedLinear,
    IdentityConvNonlinearity,
    Layer,
    LayerGroup,
    Linear,
    RectifiedLinear,
    RectifierConvNonlinearity,
    Sigmoid,
    SigmoidConvNonlinearity,
    Softplus,
    SpaceConverter,
    Tanh,
    TanhConvNonlinearity,
)
from pylearn_vae.space import VectorSpace
from pylearn_vae.utils.rng import make_np_rng

__all__ = [
    "MLP",
    "Layer",
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


class MLP(LayerGroup):
    """A stack of layers, each feeding the next.

    An MLP built without ``nvis`` or ``input_space`` is *nested*: its input
    space is set later by its owner (a VAE ``Conditional``, or an outer MLP),
    which also supplies the random generator for weight initialisation.

    Parameters
    ----------
    layers : list of Layer
        The layers, input side first. Names must be unique.
    layer_name : str, optional
        Name of the MLP when it is used as a layer.
    nvis : int, optional
        Input width of a top-level MLP (exclusive with ``input_space``).
    input_space : Space, optional
        Input space of a top-level MLP.
    seed : int or sequence, optional
        Seed for a top-level MLP's initialisation.
    batch_size, input_source, target_source, monitor_targets
        Accepted for Pylearn2 compatibility; stored.
    """

    def __init__(
        self,
        layers,
        batch_size: int | None = None,
        input_space=None,
        input_source: str = "features",
        target_source: str = "targets",
        nvis: int | None = None,
        seed=None,
        layer_name: str | None = None,
        monitor_targets: bool = True,
    ) -> None:
        super().__init__(layer_name if layer_name is not None else "mlp")
        self.layers: list = []
        self.batch_size = batch_size
        self.input_source = input_source
        self.target_source = target_source
        self.monitor_targets = monitor_targets
        self._owner = None
        self._own_rng = make_np_rng(seed, default_seed=[2013, 1, 4])
        if nvis is not None and input_space is not None:
            raise ValueError(f"MLP {self.layer_name!r}: give nvis or input_space, not both")
        if nvis is not None:
            input_space = VectorSpace(nvis)
        self._nested = input_space is None
        self.add_layers(layers, _set_space=False)
        if input_space is not None:
            self.set_input_space(input_space)

    # -- ownership -------------------------------------------------------
    def set_mlp(self, owner) -> None:
        """Attach this nested MLP to its owner (another MLP or a Conditional)."""
        if not self._nested:
            raise ValueError(
                f"MLP {self.layer_name!r} has its own input space and cannot be nested"
            )
        if self._owner is not None and self._owner is not owner:
            raise RuntimeError(f"MLP {self.layer_name!r} already belongs to another model")
        self._owner = owner

    def get_mlp(self):
        return self._owner

    @property
    def rng(self):
        return self._owner.rng if self._owner is not None else self._own_rng

    # -- structure -------------------------------------------------------
    def add_layers(self, layers, _set_space: bool = True) -> None:
        """Append ``layers``; if the input space is known, initialise them."""
        layers = list(layers)
        names = {layer.layer_name for layer in self.layers}
        leaves = {name for layer in self.layers for name in _leaf_names(layer)}
        for layer in layers:
            if not isinstance(layer, Layer):
                raise TypeError(f"MLP {self.layer_name!r}: {layer!r} is not a Layer")
            clash = [layer.layer_name] if layer.layer_name in names else []
            for name in _leaf_names(layer):
                if name in leaves:
                    clash.append(name)
                leaves.add(name)
            if clash:
                raise ValueError(
                    f"MLP {self.layer_name!r}: two layers are named {clash[0]!r}; "
                    "layer names must be unique (their parameters are named after them)"
                )
            names.add(layer.layer_name)
            layer.set_mlp(self)
        existing = self.layers
        self.layers = existing + layers
        if _set_space and self.input_space is not None:
            space = existing[-1].get_output_space() if existing else self.input_space
            for layer in layers:
                layer.set_input_space(space)
                space = layer.get_output_space()
            self.output_space = space

    def set_input_space(self, space) -> None:
        if not self.layers:
            raise ValueError(f"MLP {self.layer_name!r} has no layers")
        self.input_space = space
        for layer in self.layers:
            layer.set_input_space(space)
            space = layer.get_output_space()
        self.output_space = space

    # -- computation -----------------------------------------------------
    def fprop(self, state_below, return_all: bool = False):
        """Propagate ``state_below`` through every layer.

        Returns the last layer's output, or the list of every layer's
        output when ``return_all`` is true.
        """
        outputs = []
        state = state_below
        for layer in self.layers:
            state = layer.fprop(state)
            outputs.append(state)
        return outputs if return_all else state


def _leaf_names(layer) -> list:
    """The names of the layers that hold parameters in ``layer``: itself, or the
    parts of a group (an MLP, a composite), whose own name names no parameter."""
    parts = getattr(layer, "layers", None)
    if parts is None:
        return [layer.layer_name]
    return [name for part in parts for name in _leaf_names(part)]
