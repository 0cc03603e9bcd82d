"""The one switch: with PYLEARN_VAE_SPEEDUPS=0 (or speedups.set_enabled(False))
nothing of pylearn_vae.speedups runs, and ``function`` is ``pytensor.function``
plus the random generators' updates."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile import Function
from pytensor.compile.mode import get_mode

from pylearn_vae import numerics, speedups
from pylearn_vae.compile import function, resolve_mode
from pylearn_vae.utils.rng import SymbolicRNG

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def switched_off():
    previous = speedups.set_enabled(False)
    try:
        yield
    finally:
        speedups.set_enabled(previous)


@pytest.mark.compiles
def test_switched_off_function_is_pytensor_function_plus_the_rng_updates(switched_off):
    x = pt.vector("x", dtype="float32")
    noisy = x + SymbolicRNG(seed=1).uniform(x.shape, dtype="float32")
    fn = function([x], noisy)
    assert type(fn) is Function  # no wrapper of the speed-ups
    assert resolve_mode() is get_mode(None)  # no rewrite, linker or BLAS added
    assert len(fn.maker.fgraph.update_mapping) == 1  # the generator's update
    ones = np.ones(4, dtype="float32")
    assert not np.array_equal(fn(ones), fn(ones))  # fresh noise at every call
    plain = pytensor.function([x], x * 2, mode=get_mode(None))
    assert type(function([x], x * 2)) is type(plain)


def test_the_switch_reads_the_environment_and_the_function_wins(monkeypatch):
    previous = speedups.set_enabled(None)
    try:
        monkeypatch.setenv(speedups.ENV_VARIABLE, "0")
        assert not speedups.enabled()
        speedups.set_enabled(True)
        assert speedups.enabled()
        speedups.set_enabled(None)
        monkeypatch.delenv(speedups.ENV_VARIABLE)
        assert speedups.enabled()
        with pytest.raises(TypeError, match="True, False or None"):
            speedups.set_enabled("0")
    finally:
        speedups.set_enabled(previous)


def test_switched_off_there_are_no_process_settings(switched_off, monkeypatch):
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    speedups.prepare_process()
    assert "OPENBLAS_THREAD_TIMEOUT" not in os.environ
    speedups.set_enabled(True)
    speedups.prepare_process()
    assert "OPENBLAS_THREAD_TIMEOUT" in os.environ  # (monkeypatch restores it)


@pytest.mark.compiles
def test_switched_off_nothing_compiles_in_a_second_process(switched_off):
    with speedups.second_process_compiles(True) as in_effect:
        assert not in_effect
        x = pt.vector("x", dtype="float32")
        assert not speedups.compile_now(function([x], x + 1, precompile=True))


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="FTZ/DAZ are x86 modes"
)
def test_the_suite_computes_under_the_numerics_setting():
    """tests/conftest.py applies the setting for the session, as Train.main_loop does."""
    subnormal = float(np.full(1, 1e-39, dtype=np.float32)[0] * np.float32(1.0))
    assert (subnormal == 0.0) == numerics.flush_denormals_enabled()


#: A small training run, then what of the wing it used.
_RUN = """
import json, sys
import numpy as np
from pylearn_vae.costs.vae import VAECriterion
from pylearn_vae.datasets.dense_design_matrix import DenseDesignMatrix
from pylearn_vae.models.mlp import MLP, RectifiedLinear
from pylearn_vae.models.vae import VAE
from pylearn_vae.models.vae.conditional import BernoulliVector, DiagonalGaussian
from pylearn_vae.models.vae.prior import DiagonalGaussianPrior
from pylearn_vae.termination_criteria import EpochCounter
from pylearn_vae.train import Train
from pylearn_vae.training_algorithms.sgd import SGD
from pylearn_vae import speedups

rng = np.random.default_rng(0)
X = (rng.random((40, 6)) < 0.3).astype("float32")
mlp = lambda name: MLP(layer_name=name, layers=[RectifiedLinear(layer_name=name + "_h", dim=5, irange=0.1)])
model = VAE(nvis=6, nhid=2, prior=DiagonalGaussianPrior(),
            conditional=BernoulliVector(name="conditional", mlp=mlp("decoder")),
            posterior=DiagonalGaussian(name="posterior", mlp=mlp("encoder")), seed=0)
data = DenseDesignMatrix(X=X)
algorithm = SGD(learning_rate=0.01, batch_size=10, cost=VAECriterion(num_samples=1),
                monitoring_dataset={"train": data}, termination_criterion=EpochCounter(2))
speedups.prepare_process()
with speedups.second_process_compiles(True):
    Train(dataset=data, model=model, algorithm=algorithm).main_loop()
wing = sorted(m for m in sys.modules if m.startswith("pylearn_vae.speedups."))
decided = speedups.support._DECISION.enabled
objective = model.monitor.channels["train_objective"].val_record[-1]
print(json.dumps({"wing": wing, "decided": decided, "objective": float(objective)}))
"""


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_training_run_switched_off_uses_nothing_of_the_speedups(tmp_path):
    # (The user's compile cache: a probe that passed there before is on
    # record, so a wing that consulted it would report a decision.)
    env = {**os.environ, speedups.ENV_VARIABLE: "0", "PYTHONPATH": str(REPO)}
    for name in ("NUMBA_OPT", "OPENBLAS_THREAD_TIMEOUT"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", _RUN + "import os; print(os.environ.get('NUMBA_OPT'))"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    *_, line, numba_opt = done.stdout.strip().splitlines()
    report = json.loads(line)
    # Imported by the package's import of the interface, but never used:
    assert set(report["wing"]) <= {
        "pylearn_vae.speedups.support",
        "pylearn_vae.speedups.blas",
        "pylearn_vae.speedups.c_loops",
        "pylearn_vae.speedups.checked",
        "pylearn_vae.speedups.internals",
        "pylearn_vae.speedups.memory",
        "pylearn_vae.speedups.process",
        "pylearn_vae.speedups.source",
        "pylearn_vae.speedups.threads",
        "pylearn_vae.speedups.vecops",
        "pylearn_vae.speedups.vecmath_constants",
    }, report["wing"]
    assert report["decided"] is None  # the probe never ran
    assert numba_opt == "None"  # no process setting was made
    assert np.isfinite(report["objective"])
    assert not list((tmp_path / "compiledir").rglob("pylearn_vae_graphs*"))
    assert not list((tmp_path / "compiledir").rglob("pylearn_vae_probe"))
