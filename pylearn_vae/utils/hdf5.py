"""Compatibility alias of the HDF5 modules of :mod:`pylearn_vae.persistence`.

``hdf5_file`` (the container and its checks) and ``model_h5`` (model
files); nothing is defined here.
"""

from pylearn_vae.persistence.hdf5_file import (
    FORMAT_VERSION,
    check_structure,
    open_file,
    read_text_attribute,
    read_tree,
    write_header,
    write_tree,
)
from pylearn_vae.persistence.model_h5 import load_model_h5 as load_model
from pylearn_vae.persistence.model_h5 import (
    load_params,
    read_model,
    restore_monitor,
    write_model,
)
from pylearn_vae.persistence.model_h5 import save_model_h5 as save_model

__all__ = [
    "FORMAT_VERSION",
    "save_model",
    "load_model",
    "write_tree",
    "read_tree",
    "open_file",
    "write_model",
    "read_model",
    "check_structure",
    "write_header",
    "restore_monitor",
    "read_text_attribute",
    "load_params",
]
