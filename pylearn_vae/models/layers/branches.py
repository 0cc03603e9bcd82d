"""``Branches``: a vector input cut into consecutive pieces, one layer on each."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from pylearn_vae.models.layers.base import LayerGroup
from pylearn_vae.space import VectorSpace

__all__ = ["Branches"]


class Branches(LayerGroup):
    """Cut the input vector into pieces of ``widths`` units; apply one layer to each (an addition).

    The outputs are concatenated, so the next layer reads them all. This is
    the shape of Tomczak and Welling's two-level networks, where
    :math:`q(\\mathbf{z}_1 \\mid \\mathbf{x}, \\mathbf{z}_2)` first passes
    :math:`\\mathbf{x}` and :math:`\\mathbf{z}_2` through separate layers
    and joins them after. A hierarchical VAE's networks read their inputs
    concatenated in a fixed order (``[x, z2]`` and ``[z1, z2]``), so
    ``widths: [784, 40]`` splits ``[x, z2]`` for 784 pixels and 40 latent
    units. The widths must add up to the input's dimension.
    """

    def __init__(self, layer_name: str, widths, layers) -> None:
        super().__init__(layer_name)
        layers = list(layers)
        widths = _checked_widths(layer_name, widths, layers)
        self._hold(layers)
        self.widths = widths

    def __setstate__(self, state: dict) -> None:
        # A pickled model's widths are checked as the constructor and
        # set_input_space check them (a pickle sets attributes directly).
        super().__setstate__(state)
        name = self.__dict__.get("layer_name")
        layers = self.__dict__.get("layers")
        if not isinstance(layers, list):
            raise ValueError(f"Branches {name!r}: its layers are not a list")
        self.widths = _checked_widths(name, self.__dict__.get("widths"), layers)
        space = self.__dict__.get("input_space")
        if space is not None:
            self._check_input(space)
        for layer, width in zip(layers, self.widths, strict=True):
            below = getattr(layer, "input_space", None)
            if below is not None and getattr(below, "dim", None) != width:
                raise ValueError(
                    f"Branches {name!r}: layer {getattr(layer, 'layer_name', '?')!r} reads "
                    f"{getattr(below, 'dim', below)!r} units, but its piece has {width}"
                )

    def _check_input(self, space) -> None:
        if not isinstance(space, VectorSpace):
            raise TypeError(
                f"Branches {self.layer_name!r} expects a VectorSpace input, got {space!r}"
            )
        if sum(self.widths) != space.dim:
            raise ValueError(
                f"Branches {self.layer_name!r}: widths {self.widths} add up to "
                f"{sum(self.widths)}, but the input has {space.dim} units"
            )

    def set_input_space(self, space) -> None:
        self._check_input(space)
        self.input_space = space
        total = 0
        for layer, width in zip(self.layers, self.widths, strict=True):
            layer.set_input_space(VectorSpace(width))
            out = layer.get_output_space()
            if not isinstance(out, VectorSpace):
                raise TypeError(
                    f"Branches {self.layer_name!r}: layer {layer.layer_name!r} must output a "
                    f"VectorSpace, got {out!r}"
                )
            total += out.dim
        self.output_space = VectorSpace(total)

    def fprop(self, state_below):
        outputs, start = [], 0
        for layer, width in zip(self.layers, self.widths, strict=True):
            outputs.append(layer.fprop(state_below[:, start : start + width]))
            start += width
        return pt.concatenate(outputs, axis=1)


def _checked_widths(layer_name, widths, layers: list) -> list[int]:
    """``widths`` as a list of positive ints, one for each layer."""
    widths = list(widths) if isinstance(widths, (list, tuple)) else widths
    if not isinstance(widths, list) or not widths:
        raise ValueError(
            f"Branches {layer_name!r}: widths must be a non-empty list of positive "
            f"integers, got {widths!r}"
        )
    for width in widths:
        if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
            raise ValueError(
                f"Branches {layer_name!r}: widths must be positive integers, got {widths!r}"
            )
    if len(layers) != len(widths):
        raise ValueError(
            f"Branches {layer_name!r}: {len(widths)} widths but {len(layers)} layers; "
            "give one layer for each piece"
        )
    return [int(width) for width in widths]
