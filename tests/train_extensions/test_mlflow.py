"""The MLflow extension and ``--mlflow``: what MLflow's own client reads back
equals the monitor's records, the YAML's parameters and the saved model
files; a killed run is marked KILLED and its resumed run continues the same
MLflow run with each step once; without the [mlflow] extra nothing imports
MLflow and asking for it fails in one line naming the extra.

In-process, on the tiny model of :mod:`tests.helpers.tiny_run` (no MNIST),
each run in its own SQLite store under ``tmp_path``.
"""

from __future__ import annotations

import struct
import subprocess
import sys

import numpy as np
import pytest

from pylearn_vae.cli import train as train_cli
from pylearn_vae.config.compare import flattened_config
from pylearn_vae.errors import MissingExtraError
from pylearn_vae.job import TrainingJob
from pylearn_vae.train_extensions import mlflow as mlflow_extension
from pylearn_vae.utils.image import tile_grid
from tests.helpers.tiny_run import killed_after_epoch_two, write_tiny_config

EPOCHS = 3

#: The best model, saved next to the YAML.
SAVE_BEST = (
    "[ !obj:pylearn_vae.train_extensions.best_params.MonitorBasedSaveBest { "
    "channel_name: 'train_objective', save_path: '${PYLEARN2_TRAIN_DIR}best.h5' } ]"
)


def store(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/store/mlflow.db"


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def only_run(uri: str, experiment: str = "run"):
    found = client(uri).get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    runs = client(uri).search_runs([found.experiment_id])
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def histories(uri: str, run) -> dict[str, list[tuple[int, float]]]:
    return {
        key: sorted((m.step, m.value) for m in client(uri).get_metric_history(run.info.run_id, key))
        for key in run.data.metrics
    }


def monitor_records(model) -> dict[str, list[tuple[int, float]]]:
    """Every channel's record as (epochs seen, value), at MLflow's precision (a double)."""
    return {
        mlflow_extension.metric_key(name): [
            (int(epoch), float(value))
            for epoch, value in zip(channel.epoch_record, channel.val_record, strict=True)
        ]
        for name, channel in model.monitor.channels.items()
    }


@pytest.mark.mlflow
@pytest.mark.compiles
@pytest.mark.subprocess
def test_parameters_metrics_and_the_best_model_read_back_with_mlflows_client(tmp_path):
    config = write_tiny_config(tmp_path / "run", EPOCHS, SAVE_BEST)
    uri = store(tmp_path)
    train = TrainingJob(config, quiet=True, mlflow=uri).run()
    run = only_run(uri)
    assert run.info.status == "FINISHED"
    assert run.data.params == flattened_config(config.read_text())
    assert run.data.params["algorithm.learning_rate"] == "0.05"
    records = monitor_records(train.model)
    assert {"train_objective", "learning_rate", "momentum"} <= set(records)
    assert histories(uri, run) == records
    assert all([s for s, _ in curve] == list(range(EPOCHS + 1)) for curve in records.values())
    assert run.data.tags[mlflow_extension.RUN_KEY_TAG] == str(
        tmp_path / "run" / "run_checkpoint.h5"
    )
    names = sorted(a.path for a in client(uri).list_artifacts(run.info.run_id, "model"))
    assert names == ["model/best.h5", "model/run.pkl"]
    copy = client(uri).download_artifacts(run.info.run_id, "model/best.h5", str(tmp_path))
    assert open(copy, "rb").read() == (tmp_path / "run" / "best.h5").read_bytes()
    # the image grids of step 0 (every 10 epochs), as PNG files at twice the grid's size
    folders = [a.path for a in client(uri).list_artifacts(run.info.run_id, "pictures")]
    assert folders == ["pictures/epoch_0000"]
    grids = sorted(a.path for a in client(uri).list_artifacts(run.info.run_id, folders[0]))
    assert grids == [f"{folders[0]}/reconstructions.png", f"{folders[0]}/samples.png"]
    rows, cols = tile_grid(np.zeros((64, 4, 4)), 8, 8).shape
    for grid in grids:
        png = open(
            client(uri).download_artifacts(run.info.run_id, grid, str(tmp_path)), "rb"
        ).read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", png[16:24]) == (2 * cols, 2 * rows)


@pytest.mark.mlflow
@pytest.mark.compiles
@pytest.mark.subprocess
def test_a_killed_run_is_marked_and_its_resumed_run_continues_it_each_step_once(tmp_path):
    """Killed after logging epoch 2 but with the checkpoint of epoch 1: the
    resumed run continues the same MLflow run, and every channel has steps
    0 to 3 once each, equal to the finished run's monitor."""
    config = write_tiny_config(tmp_path / "run", EPOCHS)
    uri = store(tmp_path)
    killed_after_epoch_two(config, mlflow=uri)
    killed = only_run(uri)
    assert killed.info.status == "KILLED"
    assert [s for s, _ in histories(uri, killed)["train_objective"]] == [0, 1, 2]

    resumed = TrainingJob(config, quiet=True, resume=True, mlflow=uri).run()
    run = only_run(uri)
    assert run.info.run_id == killed.info.run_id
    assert run.info.status == "FINISHED"
    records = monitor_records(resumed.model)
    logged = histories(uri, run)
    assert set(logged) == set(records)
    for key, curve in records.items():
        # (the timings differ between the sessions; the model's channels do not)
        assert [s for s, _ in logged[key]] == list(range(EPOCHS + 1)), key
        if "seconds" not in key:
            assert logged[key] == curve, key


@pytest.mark.mlflow
@pytest.mark.compiles
@pytest.mark.subprocess
def test_a_fresh_run_is_a_new_mlflow_run_and_the_yaml_extension_names_its_experiment(tmp_path):
    uri = store(tmp_path)
    extension = (
        "[ !obj:pylearn_vae.train_extensions.mlflow.MLflow { "
        f"tracking_uri: '{uri}', experiment_name: 'tiny', run_name: 'first' }} ]"
    )
    config = write_tiny_config(tmp_path / "run", 1, extension)
    TrainingJob(config, quiet=True).run()
    TrainingJob(config, quiet=True, restart=True).run()
    found = client(uri).get_experiment_by_name("tiny")
    runs = client(uri).search_runs([found.experiment_id])
    assert [r.info.run_name for r in runs] == ["first", "first"]
    assert runs[0].info.run_id != runs[1].info.run_id


def test_flattened_config_keeps_every_value_as_written():
    text = (
        "!obj:pylearn_vae.train.Train { model: !obj:m.M { nvis: 784, rate: 1.0e-3, "
        "layers: [ !obj:m.L { dim: 2 }, [] ], opts: {}, path: '${HOME}/x' } }"
    )
    assert flattened_config(text) == {
        "class": "pylearn_vae.train.Train",
        "model.class": "m.M",
        "model.nvis": "784",
        "model.rate": "0.001",
        "model.layers.0.class": "m.L",
        "model.layers.0.dim": "2",
        "model.layers.1": "[]",
        "model.opts": "{}",
        "model.path": "${HOME}/x",
    }


def _without_mlflow(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import raises ImportError
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)


def test_without_the_extra_the_flag_fails_in_one_line_naming_it(tmp_path, monkeypatch, capsys):
    _without_mlflow(monkeypatch)
    config = write_tiny_config(tmp_path / "run", EPOCHS)
    with pytest.raises(MissingExtraError, match=r'\[mlflow\] extra: pip install -e "\.\[mlflow\]"'):
        TrainingJob(config, mlflow=True)
    with pytest.raises(MissingExtraError):
        mlflow_extension.MLflow()
    assert train_cli.main([str(config), "--mlflow"]) == 2
    assert capsys.readouterr().err == (
        "error: MLflow tracking needs MLflow's client, the [mlflow] extra: "
        'pip install -e ".[mlflow]"\n'
    )
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["run.yaml"]


@pytest.mark.mlflow
@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("runs", "error: --mlflow: MLflow tracking URI 'runs' is a path, not a URI; "),
        ("a\0b", "error: --mlflow: MLflow tracking URI "),
    ],
)
def test_a_tracking_uri_that_is_a_path_is_refused_in_one_line(tmp_path, capsys, uri, message):
    config = write_tiny_config(tmp_path / "run", EPOCHS)
    assert train_cli.main([str(config), "--quiet", "--mlflow", uri]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["run.yaml"]
    with pytest.raises(ValueError):
        mlflow_extension.MLflow(tracking_uri=uri)


@pytest.mark.mlflow
@pytest.mark.parametrize("bad", ["", "  ", 3])
def test_the_extensions_names_are_checked(bad):
    for keyword in ("tracking_uri", "experiment_name", "run_name"):
        with pytest.raises(ValueError, match=f"MLflow: {keyword} must be a non-empty string"):
            mlflow_extension.MLflow(**{keyword: bad})
    if not isinstance(bad, int):
        with pytest.raises(ValueError, match="MLflow: images_every must be a whole number"):
            mlflow_extension.MLflow(images_every=bad)
    with pytest.raises(ValueError, match="MLflow: images_every must be a whole number"):
        mlflow_extension.MLflow(images_every=-bad if isinstance(bad, int) else True)


@pytest.mark.mlflow
@pytest.mark.compiles
def test_a_store_that_fails_after_the_training_finished_says_so_without_a_resume_hint(
    tmp_path, monkeypatch, capsys
):
    """Marking the run FINISHED fails: the one line says the training finished
    and where the model is, not to resume a run that has nothing left to do."""
    from mlflow.tracking import MlflowClient

    def refuse(self, *args, **kwargs):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(MlflowClient, "set_terminated", refuse)
    config = write_tiny_config(tmp_path / "run", 1)
    uri = store(tmp_path)
    assert train_cli.main([str(config), "--quiet", "--mlflow", uri]) == 1
    assert capsys.readouterr().err.splitlines(keepends=True)[-1] == (
        f"error: MLflow ({uri}): marking the run FINISHED failed: RuntimeError: database is "
        f"locked; the training itself finished (model saved to {tmp_path / 'run' / 'run.pkl'})\n"
    )


@pytest.mark.subprocess
def test_importing_the_package_and_its_programs_does_not_import_mlflow():
    code = (
        "import sys\n"
        "import pylearn_vae.job, pylearn_vae.cli.train, pylearn_vae.train_extensions.mlflow\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout == "[]\n"


def test_metric_keys_keep_mlflows_characters_only():
    assert mlflow_extension.metric_key("valid_objective") == "valid_objective"
    assert mlflow_extension.metric_key("a:b[c]\n") == "a_b_c__"
    assert np.all([mlflow_extension.metric_key(c) == c for c in ("x-y", "x.y", "x/y", "x y")])


@pytest.mark.mlflow
@pytest.mark.network
def test_a_tracking_server_that_is_not_there_fails_at_once_in_one_line(tmp_path, capsys):
    """Nothing listens on the port: the run fails before anything compiles,
    not after MLflow's minutes of retries, and writes nothing."""
    import socket
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_tiny_config(tmp_path / "run", EPOCHS)
    started = time.monotonic()
    assert train_cli.main([str(config), "--quiet", "--mlflow", f"http://127.0.0.1:{port}"]) == 1
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(
        f"error: MLflow: cannot reach the tracking server at http://127.0.0.1:{port}: "
    ), err
    assert len(err) == 1 or (len(err) == 2 and err[0].startswith("compiling the training"))
    files = sorted(p.name for p in (tmp_path / "run").iterdir() if not p.name.startswith("."))
    assert files == ["run.yaml"]


@pytest.mark.mlflow
def test_the_mlflow_artifact_registry_the_extension_uses_is_where_it_was(tmp_path):
    """The one MLflow name below MlflowClient the extension reaches (to upload
    to the location it checked, not one the store names again per file)."""
    store_folder = tmp_path / "store"
    repository = mlflow_extension.artifact_repository_for(
        store_folder.as_uri(), f"sqlite:///{tmp_path}/ml.db"
    )
    (tmp_path / "a.txt").write_text("kept")
    repository.log_artifact(str(tmp_path / "a.txt"), "model")
    assert (store_folder / "model" / "a.txt").read_text() == "kept"
