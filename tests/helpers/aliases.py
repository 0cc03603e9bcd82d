"""The package's compatibility aliases: Pylearn2's import paths, thin re-exports
of the real modules. Code inside the package never imports them
(``tests/test_import_layers.py``), and tests only where an alias is what they
check (``tests/test_suite_layout.py``)."""

ALIASES = (
    "pylearn_vae.utils.serial",
    "pylearn_vae.utils.hdf5",
    "pylearn_vae.utils.safe_pickle",
    "pylearn_vae.checkpoint",
)
