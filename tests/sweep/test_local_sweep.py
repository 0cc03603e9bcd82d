"""Real sweeps on a local Ray instance (2 CPUs), started once for the module."""

import json
import os
import subprocess
import sys
import tempfile

import pytest

from pylearn_vae import persistence
from pylearn_vae.sweep import load_spec
from pylearn_vae.sweep.runner import run_sweep, start_ray, worker_env
from tests.helpers.configs import write_sweep
from tests.helpers.paths import REPO


@pytest.fixture(scope="module")
def local_ray(mnist_root):
    """A local Ray instance whose workers import this checkout and find the test data."""
    import ray

    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "PYLEARN2_DATA_PATH")}
    os.environ["PYTHONPATH"] = str(REPO)
    os.environ["PYLEARN2_DATA_PATH"] = str(mnist_root)
    with tempfile.TemporaryDirectory(prefix="r", dir="/tmp") as temp:  # short socket paths
        assert start_ray(num_cpus=2, temp_dir=temp)
        try:
            yield mnist_root
        finally:
            ray.shutdown()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.mark.ray
@pytest.mark.subprocess
def test_asha_stops_bad_trials_and_the_best_yaml_reproduces(local_ray, tmp_path):
    # The two good trials have the same rate (ASHA keeps a trial whose result
    # at a rung equals the best recorded there) and start first, one per CPU.
    # The tiny rate starts when a good trial has finished, so a better result
    # is recorded at epoch 1 and ASHA stops it there; the huge rate diverges
    # and is recorded without stopping the sweep.
    path = write_sweep(
        tmp_path,
        "epochs: 2\nreduction_factor: 2\nsearch_space:\n"
        "  algorithm.learning_rate: grid(0.02, 0.02, 1e-7, 1e6)\n",
    )
    out = tmp_path / "out"
    result = run_sweep(load_spec(path), out)
    rows = sorted(result.rows, key=lambda row: row.trial_id)  # grid order
    assert [row.config["algorithm.learning_rate"] for row in rows] == [0.02, 0.02, 1e-7, 1e6]
    assert [row.status for row in rows] == [
        "completed",
        "completed",
        "stopped early",
        "diverged",
    ]
    assert [row.epochs for row in rows[:3]] == [2, 2, 1]
    assert rows[2].reason == "asha stopped it after epoch 1"
    assert "objective became nan" in rows[3].reason and rows[3].best is None
    best = result.best
    assert best is result.rows[0] and best.config["algorithm.learning_rate"] == 0.02
    assert rows[0].best == rows[1].best < rows[2].best
    assert best.best_epoch == 2
    table = json.loads((out / "results.json").read_text())
    assert [t["status"] for t in table["trials"]][:2] == ["completed", "completed"]
    assert (out / "results.csv").read_text().splitlines()[0] == (
        "trial_id,algorithm.learning_rate,valid_objective,best_epoch,epochs,status,reason"
    )
    best_yaml = out / "best.yaml"
    assert "learning_rate: 0.02," in best_yaml.read_text()
    # scripts/train.py on the best YAML, in a fresh process with one BLAS
    # thread as in the trial, gives the trial's numbers bit for bit.
    env = dict(os.environ, PYTHONPATH=str(REPO), **worker_env(1))
    run = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train.py"), str(best_yaml), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    model = persistence.load(out / "best.pkl")
    record = model.monitor.channels["valid_objective"].val_record
    assert len(record) == 3  # before training, then after each of 2 epochs
    assert float(record[best.best_epoch]) == best.best


@pytest.mark.ray
@pytest.mark.subprocess
def test_a_killed_worker_resumes_from_its_checkpoint(local_ray, tmp_path):
    from tests.helpers.ray_callbacks import KillAfterFirstCheckpoint

    # Two identical trials: the killed one must end with the very numbers of the other.
    path = write_sweep(
        tmp_path,
        "epochs: 2\nscheduler: fifo\nsearch_space:\n  model.seed: grid(7, 7)\n",
    )
    killer = KillAfterFirstCheckpoint()
    result = run_sweep(load_spec(path), tmp_path / "out", callbacks=[killer])
    rows = {row.trial_id: row for row in result.rows}
    assert killer.killed in rows
    killed = rows.pop(killer.killed)
    (other,) = rows.values()
    assert killed.status == other.status == "completed"
    assert killed.resumed_from == 1 and other.resumed_from == 0
    assert (killed.best_epoch, killed.best) == (other.best_epoch, other.best)


@pytest.mark.ray
@pytest.mark.mlflow
@pytest.mark.subprocess
def test_each_trial_is_an_mlflow_run_of_the_sweeps_experiment(local_ray, tmp_path):
    """The trials' working folders differ; the store and the experiment are the
    driver's: one experiment named after the sweep file, one run per trial
    (named as Ray names the trial), with the trial's sampled value as a
    parameter and its valid_objective curve equal to what the sweep recorded."""
    from mlflow.tracking import MlflowClient

    path = write_sweep(
        tmp_path, "epochs: 1\nsearch_space:\n  algorithm.learning_rate: grid(0.02, 0.01)\n"
    )
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    result = run_sweep(load_spec(path), tmp_path / "out", mlflow=uri)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("sweep")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == len(result.rows) == 2
    by_rate = {run.data.params["algorithm.learning_rate"]: run for run in runs}
    assert sorted(by_rate) == ["0.01", "0.02"]
    for row in result.rows:
        run = by_rate[str(row.config["algorithm.learning_rate"])]
        assert run.info.status == "FINISHED", run.data.tags
        assert row.trial_id in run.info.run_name
        curve = client.get_metric_history(run.info.run_id, "valid_objective")
        assert sorted(m.step for m in curve) == [0, 1]
        assert min(m.value for m in curve if m.step > 0) == pytest.approx(row.best, rel=1e-6)
