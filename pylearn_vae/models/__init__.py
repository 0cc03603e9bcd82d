"""Models: the ``Model`` base class, MLPs and the VAE."""

from pylearn_vae.models.model import Model

__all__ = ["Model"]
