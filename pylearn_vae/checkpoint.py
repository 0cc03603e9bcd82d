"""Compatibility alias: checkpoints live in :mod:`pylearn_vae.persistence.checkpoint`,
configuration comparison in :mod:`pylearn_vae.config.compare` (nothing is defined here)."""

from pylearn_vae.config.compare import config_changes, config_differences
from pylearn_vae.persistence.checkpoint import (
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint_info",
    "config_differences",
    "config_changes",
]
