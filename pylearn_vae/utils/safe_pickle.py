"""Compatibility alias of :mod:`pylearn_vae.persistence.safe_pickle` (nothing is defined here)."""

from pylearn_vae.persistence.safe_pickle import UnsafePickleError, loads

__all__ = ["UnsafePickleError", "loads"]
