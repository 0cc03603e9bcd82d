"""The run trackers (TensorBoard, MLflow) under hostile conditions: a process
killed right after a checkpoint, a full disk, a tracking store that is not
what its URI says. Each keeps the package's promises: every step once, a
one-line error naming the folder or store, no hang."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from pylearn_vae.cli import train as train_cli
from pylearn_vae.train_extensions import mlflow as mlflow_extension
from tests.helpers import runs
from tests.helpers.tiny_run import killed_after_epoch_two, write_tiny_config

PER_EPOCH = 4


@pytest.mark.tensorboard
@pytest.mark.subprocess
@pytest.mark.compiles
@pytest.mark.slow
def test_a_step_checkpointed_before_a_kill_is_whole_in_tensorboard(tmp_path, mnist_root):
    """Killed inside epoch 4, after epoch 3's checkpoint: the resumed run starts
    at step 4, so step 3's every channel must already be in the event file
    (tensorboardX's writer thread keeps events in a buffer until a later flush)."""
    from tensorboard.backend.event_processing import event_accumulator

    progress = tmp_path / "progress.txt"
    config = write_tiny_config(tmp_path / "run", 5)
    callback = (
        "update_callbacks: [ !obj:tests.helpers.runs.Progress { "
        f"path: '{progress}', pause_at: {3 * PER_EPOCH + 1} }} ],\n        cost:"
    )
    config.write_text(config.read_text().replace("cost:", callback, 1))
    board = tmp_path / "tb"
    proc = runs.start(config, mnist_root, "--tensorboard", str(board))
    runs.wait_for_file(Path(f"{progress}.paused"), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)

    events = event_accumulator.EventAccumulator(
        str(board), size_guidance={event_accumulator.SCALARS: 0}
    )
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "train_objective" in tags
    missing = {tag for tag in tags if [e.step for e in events.Scalars(tag)] != [0, 1, 2, 3]}
    assert not missing, f"steps missing from {sorted(missing)}"


@pytest.mark.tensorboard
@pytest.mark.compiles
@pytest.mark.subprocess
def test_a_full_disk_under_the_tensorboard_folder_stops_the_run_in_one_line(
    tmp_path, monkeypatch, capsys
):
    """The event file's disk fills at epoch 2: one line naming the folder and the
    epoch, the checkpoint of epoch 1 kept, no traceback from a writer thread."""
    import errno

    from tensorboardX import record_writer

    from pylearn_vae.persistence.checkpoint import read_checkpoint_info

    flushes = []
    real_flush = record_writer.RecordWriter.flush

    def flush(self):
        flushes.append(1)
        if len(flushes) > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_flush(self)

    monkeypatch.setattr(record_writer.RecordWriter, "flush", flush)
    config = write_tiny_config(tmp_path / "run", 4)
    board = tmp_path / "tb"
    assert train_cli.main([str(config), "--quiet", "--tensorboard", str(board)]) == 1
    err = capsys.readouterr().err.splitlines(keepends=True)[-1]
    assert err == (
        f"error: TensorBoard: writing the events of epoch 2 into {board} failed: "
        f"No space left on device; the checkpoint is kept, resume with:  "
        f"python scripts/train.py {config} --resume\n"
    )
    info = read_checkpoint_info(str(tmp_path / "run" / "run_checkpoint.h5"))
    assert info["epochs_seen"] == 1


def _sqlite_target(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A path that is no SQLite database, and what the message calls it."""
    target = tmp_path / f"{kind}.db"
    if kind == "fifo":
        os.mkfifo(target)
        return target, "is a FIFO (named pipe)"
    if kind == "folder":
        target.mkdir()
        return target, "is a directory"
    if kind == "link":  # (a dangling link: SQLite would make the database at its target)
        target.symlink_to(tmp_path / "elsewhere.db")
        return target, "is a symbolic link"
    if kind == "foreign":
        import sqlite3

        with contextlib.closing(sqlite3.connect(target)) as db:
            db.execute("CREATE TABLE users (name TEXT)")
            db.commit()
        return target, "is another program's SQLite database (its tables: users)"
    target.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))  # (a model file's first bytes)
    return target, "is not an SQLite database (it begins b'\\x89HDF"


@pytest.mark.mlflow
@pytest.mark.parametrize("kind", ["fifo", "folder", "model", "link", "foreign"])
def test_an_sqlite_store_that_is_no_database_is_refused_at_once(tmp_path, kind, capsys):
    """SQLite would retry a FIFO or a folder for two minutes, printing warnings;
    another kind of file, another program's database or a link is never
    opened as MLflow's store."""
    target, what = _sqlite_target(tmp_path, kind)
    before = target.read_bytes() if kind in ("model", "foreign") else None
    config = write_tiny_config(tmp_path / "run", 2)
    uri = f"sqlite:///{target}"
    assert train_cli.main([str(config), "--quiet", "--mlflow", uri]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(f"error: MLflow store {uri}: {target} {what}"), err
    assert len(err) <= 2, err
    if before is not None:
        assert target.read_bytes() == before
    assert not (tmp_path / "elsewhere.db").exists()


@pytest.mark.mlflow
def test_the_default_store_is_checked_at_once_too(tmp_path, monkeypatch, capsys):
    """Bare --mlflow means ./mlflow.db: a folder there fails before compiling."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlflow.db").mkdir()
    config = write_tiny_config(tmp_path / "run", 2)
    assert train_cli.main([str(config), "--quiet", "--mlflow"]) == 1
    err = capsys.readouterr().err.splitlines()
    db = tmp_path / "mlflow.db"
    assert err[-1] == (
        f"error: MLflow store sqlite:///{db}: {db} is a directory; give the path of an "
        "SQLite database file (made if missing)"
    )
    assert len(err) <= 2, err


@pytest.mark.mlflow
@pytest.mark.parametrize(
    ("uri", "what"),
    [
        ("sqlite+pysqlite:///:memory:", "keeps the runs in memory"),
        ("sqlite:///file:m?mode=memory&uri=true", "keeps the runs in memory"),
        ("sqlite:///file:app.db?mode=ro&uri=true", "opens the database read-only"),
        ("http://[::1", "is not a valid URI (Invalid IPv6 URL)"),
    ],
)
def test_stores_that_keep_nothing_or_do_not_parse_are_refused(tmp_path, uri, what, capsys):
    config = write_tiny_config(tmp_path / "run", 2)
    assert train_cli.main([str(config), "--quiet", "--mlflow", uri]) == 2
    assert capsys.readouterr().err.startswith(
        f"error: --mlflow: MLflow tracking URI {uri!r} {what}"
    )


@pytest.mark.mlflow
def test_an_in_memory_store_from_the_environment_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite://")
    config = write_tiny_config(tmp_path / "run", 2)
    assert train_cli.main([str(config), "--quiet", "--mlflow"]) == 1
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .startswith("error: MLflow tracking URI 'sqlite://' keeps the runs in memory")
    )


@pytest.mark.mlflow
@pytest.mark.parametrize("uri", ["sqlite:///:memory:", "sqlite://"])
def test_an_in_memory_store_is_refused(tmp_path, uri, capsys):
    config = write_tiny_config(tmp_path / "run", 2)
    assert train_cli.main([str(config), "--quiet", "--mlflow", uri]) == 2
    assert capsys.readouterr().err == (
        f"error: --mlflow: MLflow tracking URI {uri!r} keeps the runs in memory, lost when "
        "the program ends; give sqlite:///PATH/mlflow.db (a local file) or a server's "
        "http://host:port\n"
    )


@pytest.mark.mlflow
@pytest.mark.network
def test_a_password_in_the_uri_is_never_shown(tmp_path, capsys):
    config = write_tiny_config(tmp_path / "run", 2)
    uri = f"http://alice:s3cr3t@127.0.0.1:{_closed_port()}"
    assert train_cli.main([str(config), "--quiet", "--mlflow", uri]) == 1
    err = capsys.readouterr().err
    assert "s3cr3t" not in err and "alice:***@127.0.0.1" in err, err


@pytest.mark.mlflow
@pytest.mark.network
@pytest.mark.compiles
def test_a_server_cannot_make_the_run_write_local_files(tmp_path, monkeypatch, capsys):
    """The server names a folder on this machine (or none: the working folder)
    for the run's artifacts: refused in one line, nothing written there."""
    from tests.helpers.fake_mlflow import FakeMLflowServer

    victim = tmp_path / "victim" / "model"
    victim.mkdir(parents=True)
    (victim / "run.pkl").write_text("precious")
    monkeypatch.chdir(tmp_path)
    config = write_tiny_config(tmp_path / "run", 1)
    for location in ((tmp_path / "victim").as_uri(), ""):
        with FakeMLflowServer(artifact_uri=location) as server:
            assert (
                train_cli.main([str(config), "--quiet", "--restart", "--mlflow", server.url]) == 1
            )
        assert (
            capsys.readouterr()
            .err.splitlines()[-1]
            .startswith(
                f"error: MLflow ({server.url}): the server gives the run the artifact location "
                f"{location!r}, a folder on this machine"
            )
        )
    assert (victim / "run.pkl").read_text() == "precious"
    assert sorted(p.name for p in (tmp_path / "victim").rglob("*")) == ["model", "run.pkl"]
    assert not (tmp_path / "model").exists() and not (tmp_path / "pictures").exists()


@pytest.mark.mlflow
@pytest.mark.network
@pytest.mark.compiles
def test_text_from_a_server_never_reaches_the_terminal_raw(tmp_path, capsys):
    """A run name with control characters and a forged line: MLflow's own
    "View run" line is off and nothing raw reaches either stream."""
    from tests.helpers.fake_mlflow import FakeMLflowServer

    config = write_tiny_config(tmp_path / "run", 1)
    forged = "\x1b]0;PWNED\x07\x1b[41mRED\nerror: forged"
    with FakeMLflowServer(run_name=forged) as server:
        assert train_cli.main([str(config), "--mlflow", server.url]) == 0
    out, err = capsys.readouterr()
    for stream in (out, err):
        assert "\x1b" not in stream and "\x07" not in stream
        assert not any(line.startswith("error: forged") for line in stream.splitlines())
    assert server.uploads, server.calls


@pytest.mark.mlflow
@pytest.mark.compiles
def test_a_run_whose_request_failed_is_marked_failed(tmp_path, monkeypatch, capsys):
    """The artifacts folder ./mlruns is a file: saving the pictures fails, and
    the run is still marked FAILED with the error, not left RUNNING."""
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlruns").write_text("not a folder")
    config = write_tiny_config(tmp_path / "run", 1)
    uri = f"sqlite:///{tmp_path}/ml.db"
    assert train_cli.main([str(config), "--quiet", "--mlflow", uri]) == 1
    assert "saving the pictures of epoch 0 failed" in capsys.readouterr().err
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("run").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags[mlflow_extension.ERROR_TAG].startswith("TrackingError: ")


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.mlflow
@pytest.mark.network
def test_mlflow_tracking_uri_in_the_environment_is_checked_at_once(tmp_path, monkeypatch, capsys):
    """Plain ``--mlflow`` with MLFLOW_TRACKING_URI naming a server nothing listens
    at: MLflow would retry for four minutes."""
    port = _closed_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    config = write_tiny_config(tmp_path / "run", 2)
    assert train_cli.main([str(config), "--quiet", "--mlflow"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(
        f"error: MLflow: cannot reach the tracking server at http://127.0.0.1:{port}: "
    ), err


def _serve_once(answer: bytes):
    """A server on 127.0.0.1 that answers every connection with ``answer`` (None:
    never answers); returns its port and a function that stops it."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []

    def serve():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            held.append(connection)
            if answer is not None:
                connection.recv(4096)
                connection.sendall(answer)
                connection.close()

    threading.Thread(target=serve, daemon=True).start()

    def stop():
        server.close()
        for connection in held:
            connection.close()

    return server.getsockname()[1], stop


@pytest.mark.mlflow
@pytest.mark.network
@pytest.mark.parametrize(
    ("answer", "what"),
    [
        (b"\x1b[31mnot http\r\n\r\n", "answered with no HTTP"),
        (b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", "HTTP status 500"),
        (None, "cannot reach"),
    ],
)
def test_a_server_that_answers_no_mlflow_fails_at_once(tmp_path, answer, what, monkeypatch, capsys):
    """Garbage or a server error: MLflow would retry for four minutes; silence:
    for longer (two minutes per try)."""
    monkeypatch.setattr(mlflow_extension, "CONNECT_TIMEOUT", 1.0)
    port, stop = _serve_once(answer)
    try:
        config = write_tiny_config(tmp_path / "run", 2)
        uri = f"http://127.0.0.1:{port}"
        assert train_cli.main([str(config), "--quiet", "--mlflow", uri]) == 1
    finally:
        stop()
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("error: MLflow: ") and what in err[-1], err
    assert "\x1b" not in err[-1]


@pytest.mark.mlflow
@pytest.mark.compiles
@pytest.mark.subprocess
def test_a_run_in_a_folder_with_a_quote_resumes_its_mlflow_run(tmp_path):
    """MLflow's filter strings cannot escape a quote: the resumed run must still
    find the run of its checkpoint, not start a second one."""
    from mlflow.tracking import MlflowClient

    from pylearn_vae.job import TrainingJob

    config = write_tiny_config(tmp_path / "bob's \\runs\\", 3)
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    killed_after_epoch_two(config, mlflow=uri)
    TrainingJob(config, quiet=True, resume=True, mlflow=uri).run()
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("run").experiment_id])
    assert [run.info.status for run in runs] == ["FINISHED"]


@pytest.mark.compiles
@pytest.mark.subprocess
@pytest.mark.parametrize("tracker", ["tensorboard", "mlflow"])
def test_channels_that_one_tracker_name_would_merge_are_refused(tmp_path, capsys, tracker):
    """Monitoring sets 'a:b' and 'a_b' give channels that both trackers would
    store under one name: the run ends in one line naming both, instead of
    one curve holding two sets' values."""
    pytest.importorskip("tensorboardX" if tracker == "tensorboard" else "mlflow")
    config = write_tiny_config(tmp_path / "run", 2)
    text = config.read_text().replace(
        "monitoring_dataset: { 'train': *train }",
        "monitoring_dataset: { 'a:b': *train, 'a_b': *train }",
    )
    config.write_text(text)
    flag = (
        ["--tensorboard", str(tmp_path / "tb")]
        if tracker == "tensorboard"
        else ["--mlflow", f"sqlite:///{tmp_path}/store/mlflow.db"]
    )
    assert train_cli.main([str(config), "--quiet", *flag]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    name = "TensorBoard" if tracker == "tensorboard" else "MLflow"
    assert err.startswith(f"error: {name}: the monitor channels 'a:b_"), err
    assert "would both be stored as 'a_b_" in err


#: The MLflow request that stalls: the third log-batch (the parameters, the
#: metrics of step 0, then those of epoch 1).
STALLED = {"stall_on": "runs/log-batch", "stall_from": 3}


@pytest.mark.mlflow
@pytest.mark.network
@pytest.mark.compiles
def test_a_server_that_drips_its_answer_ends_the_run_at_the_deadline(tmp_path, monkeypatch, capsys):
    """A byte every half second never trips a read timeout; the run's own
    deadline per request does: one line naming the store, the request and
    the deadline, the checkpoint of epoch 0 kept."""
    import time

    from tests.helpers.fake_mlflow import FakeMLflowServer

    monkeypatch.setattr(mlflow_extension, "REQUEST_DEADLINE", 3.0)
    config = write_tiny_config(tmp_path / "run", 3)
    with FakeMLflowServer(**STALLED, how="drip") as server:
        started = time.monotonic()
        assert train_cli.main([str(config), "--quiet", "--mlflow", server.url]) == 1
        elapsed = time.monotonic() - started
    assert server.stalled.is_set()
    assert elapsed < 60, f"{elapsed:.0f} s"
    assert capsys.readouterr().err.splitlines(keepends=True)[-1] == (
        f"error: MLflow ({server.url}): logging the metrics of epoch 1 did not end "
        "within 3 s; check the tracking server; the checkpoint is kept, resume with:  "
        f"python scripts/train.py {config} --resume\n"
    )


@pytest.mark.mlflow
@pytest.mark.network
@pytest.mark.subprocess
@pytest.mark.compiles
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_during_a_hung_mlflow_request_stops_the_run_at_once(tmp_path, mnist_root, signum):
    """The server never answers epoch 1's metrics: Ctrl-C or SIGTERM still stops
    the run within the stop grace (not after MLflow's minutes of retries), with
    the usual message, exit status and checkpoint, and a warning that the
    MLflow record ends there."""
    import time

    from pylearn_vae.persistence.checkpoint import read_checkpoint_info
    from tests.helpers.fake_mlflow import FakeMLflowServer, wait_for

    config = write_tiny_config(tmp_path / "run", 3)
    with FakeMLflowServer(**STALLED) as server:
        proc = runs.start(config, mnist_root, "--mlflow", server.url)
        wait_for(server.stalled, proc)
        asked = time.monotonic()
        proc.send_signal(signum)
        try:
            _, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
        took = time.monotonic() - asked
    name = signal.Signals(signum).name
    assert proc.returncode == train_cli.EXIT_SIGNAL[name], err
    assert took < mlflow_extension.STOP_GRACE + 15, f"{took:.0f} s"
    lines = err.splitlines()
    assert any(
        f"MLflow ({server.url}): logging the metrics of epoch 1 was given up to stop at once"
        in line
        for line in lines
    ), err
    assert lines[-1].startswith(f"error: stopped by {name} between epochs; checkpoint written"), err
    info = read_checkpoint_info(str(tmp_path / "run" / "run_checkpoint.h5"))
    assert info["epochs_seen"] == 1


@pytest.mark.mlflow
@pytest.mark.network
@pytest.mark.subprocess
@pytest.mark.slow
def test_a_stop_while_the_store_is_checked_stops_at_once(tmp_path, mnist_root):
    """The server accepts the health check and never answers: Ctrl-C stops the
    run within the stop grace with the signal's exit status, before
    anything compiles."""
    import time

    from tests.helpers.fake_mlflow import FakeMLflowServer, wait_for

    config = write_tiny_config(tmp_path / "run", 3)
    with FakeMLflowServer(stall_on="health") as server:
        proc = runs.start(config, mnist_root, "--mlflow", server.url)
        wait_for(server.stalled, proc)
        asked = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
        took = time.monotonic() - asked
    assert proc.returncode == train_cli.EXIT_SIGNAL["SIGINT"], err
    assert took < mlflow_extension.STOP_GRACE + 5, f"{took:.0f} s"
    # (before training a stop ends the run at once, whatever it waits for)
    assert err.splitlines()[-1] == "error: interrupted before training started", err
