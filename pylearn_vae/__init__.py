"""pylearn-vae: Pylearn2's variational autoencoder framework on PyTensor.

The YAML-visible dotted paths (``pylearn_vae.models.vae.VAE``,
``pylearn_vae.costs.vae.VAECriterion``, ...) mirror Pylearn2's with
``pylearn2`` replaced by ``pylearn_vae``.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
