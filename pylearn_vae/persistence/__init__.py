"""Model files and checkpoints: everything that turns objects into files and back.

One loader per file kind is the only door through which the bytes of such a
file become objects:

=====================  =============================================  ==========================
file kind              loader                                         module
=====================  =============================================  ==========================
model ``.pkl``         :func:`~.pickle_file.load_pickle`              ``pickle_file``
model ``.h5``          :func:`~.model_h5.load_model_h5`               ``model_h5``
checkpoint ``.h5``     :func:`~.checkpoint.read_checkpoint`           ``checkpoint``
YAML stored in a file  :func:`~.stored_yaml.build_model`              ``stored_yaml``
=====================  =============================================  ==========================

:func:`load` and :func:`save` choose by extension (``pylearn_vae.utils.serial``
re-exports them under Pylearn2's name). Below the loaders: ``safe_pickle``
(the restricted unpickler, used by ``pickle_file`` only), ``hdf5_file`` (the
gate every HDF5 file passes before a value is read) with ``hdf5_headers``
(declared string lengths), and ``checks`` (finite parameters, sizes).

Layering: this package sits above the models, the monitor and the
configuration layer, and below the training loop (``Train`` saves models and
checkpoints, ``MonitorBasedSaveBest`` saves the best model) and the command
lines. It talks to the objects it saves only through public methods
(``get_params``, ``state_dict``/``load_state_dict``, ``Monitor.get_monitor``);
files are written through :mod:`pylearn_vae.utils.files` (temporary file,
fsync, rename). Nothing here imports the training loop, and nothing outside
this package uses a private name of it (``tests/test_import_layers.py``
checks both, and that these modules form no import cycle).
"""

from pylearn_vae.persistence.checkpoint import (
    Checkpoint,
    load_checkpoint,
    read_checkpoint,
    read_checkpoint_info,
    restore_checkpoint,
    save_checkpoint,
)
from pylearn_vae.persistence.model_file import check_model_path, load, save
from pylearn_vae.persistence.safe_pickle import UnsafePickleError
from pylearn_vae.utils.files import ModelFileError

__all__ = [
    "Checkpoint",
    "ModelFileError",
    "UnsafePickleError",
    "check_model_path",
    "load",
    "load_checkpoint",
    "read_checkpoint",
    "read_checkpoint_info",
    "restore_checkpoint",
    "save",
    "save_checkpoint",
]
