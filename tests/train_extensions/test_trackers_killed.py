"""``train.py --tensorboard DIR --mlflow URI`` killed with SIGKILL and resumed:
TensorBoard's reader and MLflow's client both show every step once, none
missing, with the model's values of the finished run.

Real processes: the run is held inside epoch 4 (after the records of epochs
1 to 3, but with ``--checkpoint-every 2`` the checkpoint of epoch 2), killed
there, and resumed, so the trackers hold a step (3) the checkpoint does not.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from pylearn_vae import persistence
from tests.helpers import runs
from tests.helpers.tiny_run import monitor_curves, write_tiny_config

EPOCHS = 6
#: Minibatches per epoch of the tiny run (200 examples, batches of 50).
PER_EPOCH = 4


def _held_config(folder: Path, progress: Path) -> Path:
    """The tiny run, held after the first minibatch of epoch 4 until ``progress.go`` exists."""
    config = write_tiny_config(folder, EPOCHS)
    callback = (
        "update_callbacks: [ !obj:tests.helpers.runs.Progress { "
        f"path: '{progress}', pause_at: {3 * PER_EPOCH + 1} }} ],\n        cost:"
    )
    text = config.read_text().replace("cost:", callback, 1)
    config.write_text(text)
    return config


@pytest.mark.tensorboard
@pytest.mark.mlflow
@pytest.mark.subprocess
@pytest.mark.compiles
@pytest.mark.slow
def test_a_killed_and_resumed_run_shows_continuous_curves_in_both_trackers(tmp_path, mnist_root):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing import event_accumulator

    progress = tmp_path / "progress.txt"
    config = _held_config(tmp_path / "run", progress)
    board, uri = tmp_path / "tb", f"sqlite:///{tmp_path}/store/mlflow.db"
    trackers = ("--tensorboard", str(board), "--mlflow", uri, "--checkpoint-every", "2")

    proc = runs.start(config, mnist_root, *trackers)
    runs.wait_for_file(Path(f"{progress}.paused"), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    (tmp_path / "progress.txt.go").write_text("")  # (the resumed run passes the hold)
    status, err = runs.finish(runs.start(config, mnist_root, "--resume", *trackers))
    assert status == 0, err
    assert "run_checkpoint.h5 at epoch 2" in err  # (steps 0 to 3 were in both trackers)

    model = persistence.load(str(tmp_path / "run" / "run.pkl"))
    curves = monitor_curves(model)
    steps = list(range(EPOCHS + 1))
    assert all([s for s, _ in curve] == steps for curve in curves.values())

    events = event_accumulator.EventAccumulator(
        str(board), size_guidance={event_accumulator.SCALARS: 0}
    )
    events.Reload()
    shown = {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }
    assert set(shown) == set(curves)
    for name, curve in curves.items():
        assert [s for s, _ in shown[name]] == steps, name
        if "seconds" not in name:
            assert shown[name] == curve, name

    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("run").experiment_id])
    assert run.info.status == "FINISHED"
    for name in curves:
        logged = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, name))
        assert [s for s, _ in logged] == steps, name
        if "seconds" not in name:
            assert [(s, float(v)) for s, v in logged] == [
                (s, float(model.monitor.channels[name].val_record[s])) for s in steps
            ], name
