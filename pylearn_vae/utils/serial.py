"""Pylearn2's ``pylearn2.utils.serial`` names: ``serial.load`` and ``serial.save``.

A compatibility alias of :mod:`pylearn_vae.persistence` (where the code
lives, and what code inside this package imports); nothing is defined here.
"""

from pylearn_vae.persistence import UnsafePickleError, load, save
from pylearn_vae.persistence.checks import (
    check_finite_params,
    check_savable,
    params_problem,
    sizes_problem,
)
from pylearn_vae.utils.files import ModelFileError, atomic_path, atomic_write, check_regular_file

__all__ = [
    "save",
    "load",
    "atomic_write",
    "atomic_path",
    "check_regular_file",
    "check_finite_params",
    "check_savable",
    "params_problem",
    "sizes_problem",
    "UnsafePickleError",
    "ModelFileError",
]
