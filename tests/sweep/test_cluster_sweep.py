"""scripts/sweep.py against a Ray head node started with ``ray start --head``."""

import contextlib
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.helpers.configs import write_sweep
from tests.helpers.paths import REPO

RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray_processes() -> dict:
    """Ray's own processes and workers now running, by pid (zombies are not running)."""
    listing = subprocess.run(
        ["ps", "-eo", "pid=,stat=,args="], capture_output=True, text=True, check=True
    ).stdout
    marks = ("ray::", "raylet", "gcs_server", "ray/dashboard", "ray/autoscaler", "log_monitor")
    found = {}
    for line in listing.splitlines():
        pid, stat, args = (line.split(None, 2) + ["", ""])[:3]
        if not stat.startswith("Z") and any(mark in args for mark in marks):
            found[int(pid)] = args
    return found


def _wait_for(path: Path, text: str, process, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        assert process.poll() is None, path.read_text(errors="replace")
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} after {seconds} s:\n{path.read_text(errors='replace')}")


def _terminated(experiment: Path) -> set:
    """Trials Ray Tune's saved experiment state records as finished."""
    done = set()
    for state in experiment.glob("experiment_state-*.json"):
        try:
            trials = json.loads(state.read_text())["trial_data"]
        except (OSError, ValueError, KeyError):
            continue  # being rewritten
        for entry in trials:
            trial = json.loads(entry[0])
            if trial.get("status") == "TERMINATED":
                done.add(trial["trial_id"])
    return done


def _pids(trial_dir: Path) -> list:
    return [
        json.loads(line)["pid"] for line in (trial_dir / "result.json").read_text().splitlines()
    ]


def _driver(command: list, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    """Run a sweep driver to its end (at most 5 minutes), its output captured."""
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


@contextlib.contextmanager
def head_node(tmp_path: Path, mnist_root: Path):
    """A Ray head node on 127.0.0.1 (``ray start --head``) for the duration.

    Yields its port and the environment a driver joining it needs. Checks on
    the way out that no Ray process outlived the head.
    """
    before = _ray_processes()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    # Ray 2.5x heads ask for a token (written to ~/.ray/auth_token); a driver
    # joining one sends it only in token mode.
    env.update(PYTHONPATH=str(REPO), PYLEARN2_DATA_PATH=str(mnist_root), RAY_AUTH_MODE="token")
    log = tmp_path / "head.log"
    # On a machine that never ran Ray, a head in token mode finds no token and
    # fails; create it first (~/.ray/auth_token, kept if it exists).
    subprocess.run(
        [str(RAY), "get-auth-token", "--generate"], env=env, check=True, capture_output=True
    )
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
            yield port, env
        finally:
            head.send_signal(signal.SIGTERM)
            head.wait(timeout=60)
    deadline = time.monotonic() + 30
    while set(_ray_processes()) - set(before) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = {pid: args for pid, args in _ray_processes().items() if pid not in before}
    assert not left, f"Ray processes outlived the head node: {left}"


@pytest.mark.ray
@pytest.mark.network
@pytest.mark.subprocess
def test_sweep_on_a_head_node_and_resume_after_the_driver_is_killed(tmp_path, mnist_root):
    sweep = write_sweep(
        tmp_path, "epochs: 2\nscheduler: fifo\nsearch_space:\n  model.seed: grid(1, 2, 3)\n"
    )
    experiment = tmp_path / "sweep_sweep" / "trials"
    with head_node(tmp_path, mnist_root) as (port, env):
        command = [sys.executable, str(REPO / "scripts" / "sweep.py"), str(sweep)]
        command += ["--address", f"127.0.0.1:{port}"]
        driver = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        # Ray Tune saves its experiment state at every checkpoint: when the
        # third trial (which starts when a first one ends) checkpoints its
        # first epoch, the state shows one or two trials finished, and that
        # trial has a second epoch to go.
        deadline = time.monotonic() + 180
        while not _terminated(experiment) and time.monotonic() < deadline:
            assert driver.poll() is None, driver.stdout.read().decode()
            time.sleep(0.05)
        finished = _terminated(experiment)
        driver.kill()  # SIGKILL: the driver has no chance to save anything more
        driver.wait(timeout=60)
        driver.stdout.close()
        assert finished and len(finished) < 3
        pids_before = {
            d.name.split("_")[2] + "_" + d.name.split("_")[3]: _pids(d)
            for d in experiment.glob("run_trial_*")
            if (d / "result.json").exists()
        }
        run = _driver([*command, "--resume"], env, tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stderr.startswith(
        f"sweeping {sweep} on 127.0.0.1:{port}; results in {tmp_path / 'sweep_sweep'} (resuming)"
    )
    with (tmp_path / "sweep_sweep" / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["model.seed"] for row in rows) == ["1", "2", "3"]
    assert {row["status"] for row in rows} == {"completed"}, (rows, run.stdout, run.stderr)
    assert all(float(row["valid_objective"]) > 0 for row in rows)
    assert "completed" in run.stdout  # the table
    for trial in finished:  # finished before the kill: not run again
        (trial_dir,) = experiment.glob(f"run_trial_{trial}_*")
        assert _pids(trial_dir) == pids_before[trial] and len(pids_before[trial]) == 2


DRIVER = """
import sys
from pylearn_vae.sweep import load_spec
from pylearn_vae.sweep.runner import run_sweep
from tests.helpers.ray_callbacks import DieBetweenCheckpointAndState
spec, out, address = sys.argv[1:]
run_sweep(load_spec(spec), out, address=address, callbacks=[DieBetweenCheckpointAndState()])
"""


@pytest.mark.ray
@pytest.mark.network
@pytest.mark.subprocess
def test_a_driver_killed_before_recording_a_checkpoint_resumes_from_it(tmp_path, mnist_root):
    sweep = write_sweep(
        tmp_path, "epochs: 3\nscheduler: fifo\nsearch_space:\n  model.seed: grid(4)\n"
    )
    out = tmp_path / "sweep_sweep"
    with head_node(tmp_path, mnist_root) as (port, env):
        address = f"127.0.0.1:{port}"
        first = _driver(
            [sys.executable, "-c", DRIVER, str(sweep), str(out), address], env, tmp_path
        )
        assert first.returncode == 9, first.stderr
        (trial_dir,) = (out / "trials").glob("run_trial_*")
        assert sorted(p.name for p in trial_dir.glob("checkpoint_*")) == ["checkpoint_000001"]
        command = [sys.executable, str(REPO / "scripts" / "sweep.py"), str(sweep)]
        run = _driver([*command, "--address", address, "--resume"], env, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "it goes on from its newest checkpoint" in run.stderr
    with (out / "results.csv").open() as handle:
        (row,) = csv.DictReader(handle)
    assert (row["status"], row["epochs"]) == ("completed", "3"), row
    # Epochs 1 and 2 by the first driver's worker; epoch 3 by a new one that
    # went on from epoch 2's checkpoint (nothing trained twice, nothing lost).
    reports = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
    assert [r["epochs_seen"] for r in reports] == [1, 2, 3]
    assert [r["resumed_from"] for r in reports] == [0, 0, 2]
    assert reports[0]["pid"] == reports[1]["pid"] != reports[2]["pid"]
