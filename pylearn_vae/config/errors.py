"""The error every configuration problem becomes (defined in :mod:`pylearn_vae.errors`)."""

from __future__ import annotations

from pylearn_vae.errors import ConfigError

__all__ = ["ConfigError"]
