"""scripts/sweep.py against a Ray head node started with ``ray start --head``."""

import csv
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.sweep.conftest import REPO, write_sweep

RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray_processes() -> set:
    """Pids of Ray's own processes and workers now running (read from ps)."""
    listing = subprocess.run(
        ["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True
    ).stdout
    marks = ("ray::", "raylet", "gcs_server", "ray/dashboard", "ray/autoscaler", "log_monitor")
    return {
        int(line.split(None, 1)[0])
        for line in listing.splitlines()
        if len(line.split(None, 1)) == 2 and any(m in line.split(None, 1)[1] for m in marks)
    }


def _wait_for(path: Path, text: str, process, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        assert process.poll() is None, path.read_text(errors="replace")
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} after {seconds} s:\n{path.read_text(errors='replace')}")


def test_sweep_on_a_head_node_started_with_ray_start(tmp_path, mnist_root):
    before = _ray_processes()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    # Ray 2.5x heads ask for a token (written to ~/.ray/auth_token); a driver
    # joining one sends it only in token mode.
    env.update(PYTHONPATH=str(REPO), PYLEARN2_DATA_PATH=str(mnist_root), RAY_AUTH_MODE="token")
    log = tmp_path / "head.log"
    with tempfile.TemporaryDirectory(prefix="r", dir="/tmp") as temp, log.open("w") as out:
        # --block keeps `ray start` in the foreground: stopping it (by its pid)
        # stops the processes it started, and nothing else.
        head = subprocess.Popen(
            [str(RAY), "start", "--head", "--block", f"--port={port}"]
            + ["--node-ip-address=127.0.0.1", f"--temp-dir={temp}", "--num-cpus=2"]
            + ["--include-dashboard=false", "--disable-usage-stats"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for(log, "Ray runtime started", head, 120)
            sweep = write_sweep(
                tmp_path, "epochs: 1\nscheduler: fifo\nsearch_space:\n  model.seed: grid(1, 2)\n"
            )
            run = subprocess.run(
                [sys.executable, str(REPO / "scripts" / "sweep.py"), str(sweep)]
                + ["--address", f"127.0.0.1:{port}"],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=300,
            )
        finally:
            head.send_signal(signal.SIGTERM)
            head.wait(timeout=60)
    assert run.returncode == 0, run.stderr
    assert f"sweeping {sweep} on 127.0.0.1:{port}" in run.stderr
    with (tmp_path / "sweep_sweep" / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["model.seed"] for row in rows) == ["1", "2"]
    assert {row["status"] for row in rows} == {"completed"}
    assert all(float(row["valid_objective"]) > 0 for row in rows)
    assert "completed" in run.stdout  # the table
    deadline = time.monotonic() + 30
    while _ray_processes() - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _ray_processes() - before, "Ray processes outlived the head node"
