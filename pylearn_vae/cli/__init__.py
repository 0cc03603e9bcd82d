"""Command-line programs; ``scripts/*.py`` are thin wrappers around these."""

from pylearn_vae.cli.compile_cache import use_writable_cache as _use_writable_cache

# Before any program module imports PyTensor (see compile_cache).
_use_writable_cache()
