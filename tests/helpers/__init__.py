"""Code shared by more than one test module, by topic.

Test modules import shared code from here only, never from another test
module or a conftest (``tests/test_suite_layout.py`` checks it); fixtures
stay in the ``conftest.py`` files and may call these helpers. Subprocess
scripts and test YAML import them too (with ``PYTHONPATH`` set to the
repository), so nothing here is a fixture.

``paths``           the repository and the shared binarized MNIST mirror
``models``          small VAE and data factories (``make_vae``, ``binary_data``)
``markers``         ``numba_only`` (decides the backend when imported)
``references``      float64 NumPy references for kernels and layers
``configs``         training and model YAML; the sweep tests' files
``runs``            the programs of ``scripts/`` run in child processes
``downloads``       a loopback HTTP server and synthetic ``.amat`` splits
``hostile_hdf5``    forging an HDF5 string attribute's declared length
``hostile_pickles`` generators of hostile pickles
``audit``           recording what code does (Python audit events)
``aliases``         the package's compatibility aliases (Pylearn2's paths)
``ray_callbacks``   Ray Tune callbacks (imports Ray: only tests marked ``ray``)
``tiny_run``        a tiny training YAML on random data, and its monitor as curves
"""
