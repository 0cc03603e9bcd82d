"""Collection of the package's doctests (``--doctest-modules`` imports every module).

``pylearn_vae/ops/jax_im2col.py`` imports JAX at the top (the package imports
it only when the JAX backend is chosen), so without the optional [jax] extra
it is not collected. Test configuration is in ``tests/conftest.py``.
"""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("jax") else ["pylearn_vae/ops/jax_im2col.py"]
