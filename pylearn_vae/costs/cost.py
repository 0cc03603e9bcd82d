"""The ``Cost`` base class."""

from __future__ import annotations

from collections import OrderedDict

import pytensor

__all__ = ["Cost"]


class Cost:
    """An objective to minimise, built symbolically from a model and a batch.

    Subclasses implement :meth:`expr`; :meth:`get_gradients` differentiates
    it with respect to the model's parameters.
    """

    supervised = False

    def expr(self, model, data, **kwargs):
        """Return a scalar symbolic cost for ``model`` on the batch ``data``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement expr")

    def training_expr(self, model, data, **kwargs):
        """The scalar the training algorithm minimises: :meth:`expr` unless a
        subclass weights its terms while training (see ``VAECriterion``'s
        ``kl_weight``). The monitor reports :meth:`expr` as ``objective``."""
        return self.expr(model, data, **kwargs)

    def get_data_specs(self, model):
        """Return ``(space, source)`` describing the batch this cost needs."""
        return (model.get_input_space(), model.input_source)

    def get_gradients(self, model, data, cost=None, **kwargs):
        """Return ``(gradients, updates)``: an OrderedDict param -> gradient, and {}.

        ``cost`` is the symbolic value of :meth:`expr` if the caller already
        built it: differentiating that same expression (rather than building
        a second one, with its own noise draws) keeps a training step to one
        forward pass.
        """
        if cost is None:
            cost = self.expr(model, data, **kwargs)
        params = list(model.get_params())
        grads = pytensor.grad(cost, params, disconnected_inputs="raise")
        return OrderedDict(zip(params, grads)), OrderedDict()

    def get_monitoring_channels(self, model, data, **kwargs) -> OrderedDict:
        """Extra named scalar expressions to monitor (none by default)."""
        return OrderedDict()
