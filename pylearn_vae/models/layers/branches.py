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
        self._hold(layers)
        self.widths = [int(width) for width in widths]

    def set_input_space(self, space) -> None:
        if not isinstance(space, VectorSpace):
            raise TypeError(
                f"Branches {self.layer_name!r} expects a VectorSpace input, got {space!r}"
            )
        if sum(self.widths) != space.dim:
            raise ValueError(
                f"Branches {self.layer_name!r}: widths {self.widths} add up to "
                f"{sum(self.widths)}, but the input has {space.dim} units"
            )
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
