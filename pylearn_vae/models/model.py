"""The ``Model`` base class: parameters, learning-rate scalers, constraints."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from pylearn_vae.utils.state import assign

__all__ = ["Model"]


class Model:
    """Base class of everything that owns trainable parameters.

    Subclasses fill ``self._params`` (a list of shared variables) or
    override :meth:`get_params`. Models are compared by identity.
    """

    #: yaml_parse stores the YAML that built a model in ``yaml_src``.
    records_yaml_src = True

    def __init__(self) -> None:
        self._params: list = []
        self.monitor = None
        self.input_space = None
        #: The YAML that built this model (set by yaml_parse); lets HDF5
        #: model files rebuild it without pickle.
        self.yaml_src: str | None = None
        #: The YAML of the training set (set by ``Train``, as in Pylearn2),
        #: so that evaluation scripts can reload the data.
        self.dataset_yaml_src: str | None = None

    def __setstate__(self, state: dict) -> None:
        # Models pickled before an attribute existed get its default.
        self.__dict__.update(state)
        self.__dict__.setdefault("dataset_yaml_src", None)

    # -- parameters -----------------------------------------------------
    def get_params(self) -> list:
        """Return the list of trainable shared variables (a copy)."""
        return list(self._params)

    def get_param_values(self, borrow: bool = False) -> list[np.ndarray]:
        # np.asarray: after a JAX-compiled step the values are JAX arrays.
        return [np.asarray(p.get_value(borrow=borrow)) for p in self.get_params()]

    def set_param_values(self, values, borrow: bool = False) -> None:
        params = self.get_params()
        if len(values) != len(params):
            raise ValueError(f"expected {len(params)} parameter values, got {len(values)}")
        for param, value in zip(params, values):
            assign(param, value, f"parameter {param.name!r}", borrow=borrow)

    def get_lr_scalers(self) -> OrderedDict:
        """Map parameters to learning-rate multipliers (none by default)."""
        return OrderedDict()

    def modify_updates(self, updates) -> None:
        """Constrain proposed ``updates`` in place (e.g. max column norms)."""
        self._modify_updates(updates)

    def _modify_updates(self, updates) -> None:
        """Hook for subclasses; does nothing by default."""

    # Pylearn2 used this name before ``modify_updates``.
    def censor_updates(self, updates) -> None:
        self.modify_updates(updates)

    def get_weights(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement get_weights")

    # -- spaces and monitoring -------------------------------------------
    def get_input_space(self):
        return self.input_space

    def get_monitoring_data_specs(self):
        return (self.get_input_space(), "features")

    def get_monitoring_channels(self, data) -> OrderedDict:
        return OrderedDict()

    def get_total_params(self) -> int:
        return int(sum(p.get_value(borrow=True).size for p in self.get_params()))
