"""A real ``tensorboard --logdir`` serves the curves of a ``--tensorboard`` run:
every scalar its HTTP API returns (``/data/plugin/scalars/...``) equals the
monitor's record, step for step, as float32.

The run is the tiny one of :mod:`tests.helpers.tiny_run` (random data, in
process); the server is TensorBoard's own program, started from this
interpreter's environment on 127.0.0.1 and a port the system picks, and
always stopped with its data server (the whole process group).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pylearn_vae.job import TrainingJob
from tests.helpers.tiny_run import monitor_curves, write_tiny_config

EPOCHS = 3

#: How long the server may take to start and to load the events (seconds).
PATIENCE = 60.0

#: The line TensorBoard prints once it serves (on stderr).
SERVING = re.compile(r"TensorBoard \S+ at (http://127\.0\.0\.1:\d+/)")

#: Plain HTTP to 127.0.0.1, whatever proxy the environment names.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@contextlib.contextmanager
def tensorboard_server(logdir: Path, log: Path, deadline: float) -> Iterator[str]:
    """Run ``tensorboard --logdir logdir`` on 127.0.0.1 and a free port, its
    output going to ``log``; yield its base URL once it answers. The server
    and the data server it starts are stopped on exit, whatever happened."""
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)]
    command += ["--host", "127.0.0.1", "--port", "0"]
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that one signal stops all
        )
    try:
        yield _wait_until_serving(process, log, deadline)
    finally:
        _stop(process)


def _wait_until_serving(process: subprocess.Popen, log: Path, deadline: float) -> str:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tensorboard exited with {process.returncode}:\n{log.read_text()}")
        found = SERVING.search(log.read_text(errors="replace"))
        if found:
            with contextlib.suppress(OSError):
                get_json(found.group(1) + "data/runs")
                return found.group(1)
        time.sleep(0.2)
    pytest.fail(f"tensorboard did not answer within {PATIENCE:.0f} s:\n{log.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the group, SIGKILL if the server lingers; then to any member left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def get_json(url: str):
    with OPENER.open(url, timeout=10) as response:
        return json.load(response)


def served_curves(url: str) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Run -> tag -> (step, value) pairs, as the scalars plugin serves them."""
    tags = get_json(url + "data/plugin/scalars/tags")
    curves = {}
    for run, run_tags in tags.items():
        curves[run] = {}
        for tag in run_tags:
            query = urllib.parse.urlencode({"run": run, "tag": tag})
            points = get_json(f"{url}data/plugin/scalars/scalars?{query}")
            curves[run][tag] = [(step, value) for _wall_time, step, value in points]
    return curves


def wait_for_curves(url: str, tags: set[str], points: int, deadline: float):
    """The served curves once every tag has ``points`` points (the server loads
    the event files in the background), or as they are at the deadline."""
    while True:
        served = served_curves(url)
        complete = served and all(
            set(curves) == tags and all(len(curve) == points for curve in curves.values())
            for curves in served.values()
        )
        if complete or time.monotonic() >= deadline:
            return served
        time.sleep(0.5)


@pytest.mark.tensorboard
@pytest.mark.compiles
@pytest.mark.subprocess
@pytest.mark.network
def test_the_tensorboard_server_serves_every_curve_as_the_monitor_recorded_it(tmp_path):
    if importlib.util.find_spec("tensorboard") is None:
        pytest.skip("serving the curves needs TensorBoard itself (pip install tensorboard)")
    config = write_tiny_config(tmp_path / "run", EPOCHS)
    train = TrainingJob(config, quiet=True, tensorboard=tmp_path / "tb").run()
    curves = monitor_curves(train.model)
    assert "train_objective" in curves and len(curves) > 5
    assert all([step for step, _ in curve] == list(range(EPOCHS + 1)) for curve in curves.values())

    deadline = time.monotonic() + PATIENCE
    with tensorboard_server(tmp_path / "tb", tmp_path / "tensorboard.log", deadline) as url:
        served = wait_for_curves(url, set(curves), EPOCHS + 1, deadline)
    # one run, the logdir itself (TensorBoard names it "."), holding every channel
    assert list(served) == ["."]
    assert sorted(served["."]) == sorted(curves)
    for tag, curve in curves.items():
        assert served["."][tag] == curve, tag
