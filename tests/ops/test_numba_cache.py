"""A Numba-compiled training step gives the same bits whether it was just compiled or
loaded from PyTensor's on-disk cache (and, with it, from our cache of rewritten
graphs, which must lead to the same Numba code).

With reassociation allowed in the fused elementwise loops, the freshly compiled
step and the cached one rounded a few momentum updates differently (1 ulp),
so a run resumed from a checkpoint with a warm cache drifted from the same
run started on a cold cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.markers import numba_only

# Tests of the speed machinery itself: skipped when PYLEARN_VAE_SPEEDUPS=0 turns it off.
pytestmark = pytest.mark.speedups

REPO = Path(__file__).resolve().parents[2]

STEP = """
import hashlib
import numpy as np
from pylearn_vae.costs.vae import VAECriterion
from pylearn_vae.datasets import DenseDesignMatrix
from pylearn_vae.training_algorithms.learning_rule import Momentum
from pylearn_vae.training_algorithms.sgd import SGD
from tests.helpers.models import binary_data, make_vae

model = make_vae(nvis=784, nhid=8, hidden=32, seed=3, irange=0.05)
algo = SGD(
    learning_rate=0.01, cost=VAECriterion(), batch_size=100,
    learning_rule=Momentum(0.5), theano_function_mode="NUMBA",
)
algo.setup(model, DenseDesignMatrix(X=binary_data(300, 784, seed=1)))
step = algo._step_function(100)
digest = hashlib.sha256()
for batch in np.arange(300).reshape(3, 100):
    digest.update(np.asarray(step(batch)).tobytes())
    for value in model.get_param_values():
        digest.update(value.tobytes())
print(digest.hexdigest())
"""


def run_step(compiledir: Path) -> str:
    env = {
        **os.environ,
        "PYTENSOR_FLAGS": f"base_compiledir={compiledir}",
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [sys.executable, "-c", STEP], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


@numba_only
@pytest.mark.subprocess
@pytest.mark.cold_cache
def test_cold_and_cached_compiles_give_the_same_bits(tmp_path):
    cold = run_step(tmp_path)
    numba_entries = set((tmp_path / "numba").iterdir())
    assert numba_entries, "the first run should have filled the cache"
    assert list(tmp_path.glob("compiledir_*/pylearn_vae_graphs/*.pkl")), (
        "the first run should have stored its rewritten graphs"
    )
    warm = run_step(tmp_path)
    assert cold == warm
    # The second run built its step from the stored graph; the graph must
    # have PyTensor's Numba key of the first one, or Numba compiles it again.
    assert set((tmp_path / "numba").iterdir()) == numba_entries
