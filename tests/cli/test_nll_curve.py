"""benchmarks/nll_curve.py: a run's saved models against its training time, for real."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pylearn_vae import persistence

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.compiles
@pytest.mark.subprocess
def test_one_row_per_model_with_its_own_epochs_time_and_estimates(
    small_mnist_model, mnist_root, tmp_path
):
    out = tmp_path / "curve.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "nll_curve.py"), str(small_mnist_model)]
        + ["--num-samples", "20", "--max-examples", "40", "--json", str(out)],
        env=dict(os.environ, PYLEARN2_DATA_PATH=str(mnist_root)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    (row,) = json.loads(out.read_text())
    monitor = persistence.load(small_mnist_model).monitor
    seconds = monitor.channels["seconds_per_epoch"].val_record
    assert row["epochs"] == monitor.get_epochs_seen() == 3
    assert row["training_seconds"] == sum(float(s) for s in seconds) > 0
    assert row["valid_objective"] == float(monitor.channels["valid_objective"].val_record[-1])
    assert row["num_examples"] == 40
    assert 0 < row["nll"] <= row["negative_elbo"]
    assert f"| 3 | {row['training_seconds']:,.0f} |" in run.stdout


@pytest.mark.subprocess
def test_a_model_that_is_not_there_is_named(tmp_path):
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "nll_curve.py"), str(tmp_path / "no.h5")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "no.h5" in run.stderr and "Traceback" not in run.stderr
