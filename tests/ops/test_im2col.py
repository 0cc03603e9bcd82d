"""The Numba loops of Im2Col and Col2Im against their NumPy definitions.

One-channel images take loops of their own (pylearn_vae/speedups/numba_im2col.py),
so every geometry is tried with one channel and with several.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytensor.tensor as pt
import pytest

from pylearn_vae.compile import function
from pylearn_vae.ops.im2col import Col2Im, Im2Col, col2im_numpy, im2col_numpy
from tests.helpers.markers import numba_only

# Tests of the speed machinery itself: skipped when PYLEARN_VAE_SPEEDUPS=0 turns it off.
pytestmark = pytest.mark.speedups

REPO = Path(__file__).resolve().parents[2]

# (image rows/cols, kernel, stride, padding): the convolutional model's
# first layer, and an uneven one with padding on one side only.
GEOMETRIES = [((28, 28), (4, 4), (2, 2), (1, 1)), ((7, 6), (3, 2), (2, 1), (1, 0))]


@numba_only
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.compiles
def test_numba_patch_loops_match_numpy(channels):
    rng = np.random.default_rng(channels)
    inputs, outputs, cases = [], [], []
    for image, kernel, stride, pad in GEOMETRIES:
        im2col, col2im = Im2Col(image, kernel, stride, pad), Col2Im(image, kernel, stride, pad)
        x = pt.tensor4(dtype="float32", shape=(None, *image, channels))
        cols = pt.matrix(dtype="float32", shape=(None, im2col.patch_size * channels))
        inputs += [x, cols]
        outputs += [im2col(x), col2im(cols)]
        x_value = rng.normal(size=(3, *image, channels)).astype("float32")
        cols_value = rng.normal(size=(3 * im2col.positions, im2col.patch_size * channels))
        cases.append((im2col, x_value, cols_value.astype("float32")))
    values = [value for _, x_value, cols_value in cases for value in (x_value, cols_value)]
    results = function(inputs, outputs, mode="NUMBA")(*values)
    for k, (geometry, x_value, cols_value) in enumerate(cases):
        patches, images = results[2 * k], results[2 * k + 1]
        np.testing.assert_array_equal(patches, im2col_numpy(x_value, geometry))
        assert images.shape == (3, *geometry.image_shape, channels)
        np.testing.assert_allclose(images, col2im_numpy(cols_value, geometry), rtol=1e-5, atol=1e-6)


ONE_CHANNEL_PATCHES = """
import numpy as np
import pytensor.tensor as pt
import pylearn_vae
from pylearn_vae.ops.im2col import Im2Col
from pylearn_vae.compile import function

assert pylearn_vae.__file__.startswith({root!r}), pylearn_vae.__file__
x = pt.tensor4(dtype="float32", shape=(None, 4, 4, 1))
patches = function([x], Im2Col((4, 4), (3, 3), (1, 1), (1, 1))(x), mode="NUMBA")
print(patches(np.ones((1, 4, 4, 1), "float32"))[0, 0])  # a padded corner
"""


@pytest.mark.slow
@numba_only
@pytest.mark.subprocess
@pytest.mark.cold_cache
def test_an_edited_loop_is_compiled_again_not_loaded_from_a_warm_cache(tmp_path):
    # PyTensor finds compiled code by the operation's cache key, not by its
    # code; the key must change with the source, or an edit (or an upgrade)
    # keeps running the old compiled loop.
    root = tmp_path / "clone"
    shutil.copytree(
        REPO / "pylearn_vae", root / "pylearn_vae", ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {
        **os.environ,
        "PYTENSOR_FLAGS": f"base_compiledir={tmp_path / 'compiledir'}",
        "PYTHONPATH": str(root),
    }

    def corner():
        script = ONE_CHANNEL_PATCHES.format(root=str(root))
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        return float(done.stdout.split()[-1])

    assert corner() == 0.0
    loops = root / "pylearn_vae" / "speedups" / "numba_im2col.py"
    source = loops.read_text()
    padding = "out[row, p * kc + q] = x[n, r, s, 0] if inside else 0"
    assert source.count(padding) == 1
    loops.write_text(source.replace(padding, padding[:-1] + "7"))
    assert corner() == 7.0
