"""Every program stops promptly on SIGINT, SIGTERM or SIGHUP, sent to it alone
or to its process group: it says so, exits with 128 + the signal's number and
leaves no process behind (evaluation workers included).

Each program runs in a new session with a unique token in its environment;
after it ends, no process on the machine may still carry the token.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

pytestmark = pytest.mark.slow

TOKEN = "PYLEARN_VAE_SIGNAL_TEST"


def _carrying(token: str) -> list[int]:
    """The processes whose environment holds ``TOKEN=token``."""
    found = []
    needle = f"{TOKEN}={token}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _start(args, mnist_root, token):
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PYLEARN2_DATA_PATH": str(mnist_root),
        TOKEN: token,
    }
    return subprocess.Popen(
        [sys.executable, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _kill_if_running(proc) -> None:
    """Kill the program's whole group if it is still running (a test failed)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_for(proc, text: str, timeout: float = 300) -> None:
    """Read the program's standard error until a line holds ``text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            pytest.fail(f"the program ended before saying {text!r} ({proc.wait()})")
        if text in line:
            return
    pytest.fail(f"the program did not say {text!r} in {timeout} s")


@pytest.mark.subprocess
@pytest.mark.compiles  # (the model fixture trains in this process)
@pytest.mark.parametrize(
    ("signum", "group"),
    [
        (signal.SIGINT, False),
        (signal.SIGINT, True),  # (as Ctrl-C in a terminal)
        (signal.SIGTERM, False),
        (signal.SIGTERM, True),
        # (Sent to the group, SIGHUP also ends multiprocessing's resource
        # tracker, which then prints its own tracebacks: Python's, not ours.)
        (signal.SIGHUP, False),
    ],
    ids=["SIGINT", "SIGINT-group", "SIGTERM", "SIGTERM-group", "SIGHUP"],
)
def test_evaluate_with_workers_stops_at_once_and_leaves_no_worker(
    small_mnist_model, mnist_root, signum, group
):
    token = uuid.uuid4().hex
    proc = _start(
        [
            str(REPO / "scripts" / "evaluate.py"),
            str(small_mnist_model),
            "--num-samples",
            "5000",
            "--workers",
            "2",
            "--batch-size",
            "50",
        ],
        mnist_root,
        token,
    )
    try:
        _wait_for(proc, "evaluating ")
        time.sleep(3)  # (the workers are computing)
        assert len(_carrying(token)) >= 2
        start = time.monotonic()
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - start
    finally:
        _kill_if_running(proc)
    assert elapsed < 10, elapsed
    assert "Traceback" not in err, err
    expected = (
        "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    )
    assert err.strip().splitlines()[-1] == f"error: {expected}", err
    assert proc.returncode == 128 + signum
    deadline = time.monotonic() + 5
    while _carrying(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _carrying(token) == []


@pytest.mark.subprocess
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_training_stopped_while_it_builds_says_so(tmp_path, mnist_root, signum):
    """A signal before the first minibatch (while the YAML is built and the
    functions compile) ends the run with a message too."""
    from tests.helpers.configs import SMALL_MNIST_YAML

    config = tmp_path / "run.yaml"
    config.write_text(SMALL_MNIST_YAML.replace("PATH", str(tmp_path / "run.pkl")))
    token = uuid.uuid4().hex
    proc = _start([str(REPO / "scripts" / "train.py"), str(config)], mnist_root, token)
    try:
        _wait_for(proc, "compiling the training and monitoring functions")
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        _kill_if_running(proc)
    assert "Traceback" not in err, err
    assert f"stopped by {signal.Signals(signum).name}" in err or "stopped at" in err, err
    assert proc.returncode == 128 + signum, err
    time.sleep(0.5)
    assert _carrying(token) == []


@pytest.mark.subprocess
@pytest.mark.ray
@pytest.mark.network  # (Ray's processes talk over 127.0.0.1)
@pytest.mark.parametrize("group", [False, True], ids=["SIGINT", "SIGINT-group"])
def test_a_sweep_stops_on_sigint_with_its_results_and_resume_command_and_stops_ray(
    tmp_path, mnist_root, group
):
    from tests.helpers.configs import write_sweep

    sweep = write_sweep(
        tmp_path,
        "epochs: 20\nsearch_space:\n  algorithm.learning_rate: grid(0.001, 0.002)\n",
    )
    token = uuid.uuid4().hex
    proc = _start(
        [str(REPO / "scripts" / "sweep.py"), str(sweep), "--num-cpus", "2", "--quiet"],
        mnist_root,
        token,
    )
    try:
        _wait_for(proc, "sweeping ")
        # Ray's processes inherit the token: with its workers up, trials run.
        deadline = time.monotonic() + 240
        while len(_carrying(token)) < 4 and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(5)
        start = time.monotonic()
        if group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=90)
        elapsed = time.monotonic() - start
    finally:
        _kill_if_running(proc)
    # Inside Ray Tune's loop the SIGINT is Ray Tune's: it stops the trials and
    # the sweep ends with the results so far; earlier it is the program's. Both
    # say so and give the command that continues the sweep.
    assert "Traceback" not in err, err
    assert f"{sweep} --resume" in err, err
    assert (
        "error: interrupted; continue the sweep with:" in err
        or "trial(s) unfinished; continue it with:" in err
    ), err
    assert proc.returncode == 128 + signal.SIGINT, err
    assert elapsed < 30, elapsed
    deadline = time.monotonic() + 30
    while _carrying(token) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _carrying(token) == []


def _wait_for_stdout(proc, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"the program ended before saying {text!r}: {proc.communicate()[1]}")
        if text in line:
            return
    pytest.fail(f"the program did not say {text!r} in {timeout} s")


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (an ended process its new parent has not reaped yet does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _gone_within(token: str, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while _carrying(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _carrying(token)


@pytest.mark.subprocess
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_bench_job_stopped_leaves_neither_its_load_nor_its_run_behind(mnist_root, signum):
    """benchmarks/bench_job.py --load: the competing processes and the timed
    training run end with it, for a signal sent to it alone."""
    token = uuid.uuid4().hex
    bench = REPO / "benchmarks" / "bench_job.py"
    proc = _start(
        [str(bench), "--epochs", "1", "--repeats", "1", "--runners", "ours", "--load", "1"],
        mnist_root,
        token,
    )
    try:
        _wait_for_stdout(proc, "1 competing process(es)")
        deadline = time.monotonic() + 120  # itself, the competing process, the run
        while len(_carrying(token)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_carrying(token)) >= 3
        time.sleep(0.5)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        _kill_if_running(proc)
    assert "Traceback" not in err, err
    assert proc.returncode == 128 + signum, err
    assert _gone_within(token, 15) == []


@pytest.mark.subprocess
def test_bench_job_killed_outright_still_stops_its_competing_processes(mnist_root):
    """SIGKILL runs no cleanup: the competing processes notice their parent is
    gone and end by themselves (killed as soon as they exist, before they
    have started their loop)."""
    token = uuid.uuid4().hex
    bench = REPO / "benchmarks" / "bench_job.py"
    proc = _start(
        [str(bench), "--epochs", "1", "--repeats", "1", "--runners", "ours", "--load", "2"],
        mnist_root,
        token,
    )
    try:
        _wait_for_stdout(proc, "2 competing process(es)")

        def load() -> list[int]:  # (a child shows its own command line once it has exec'd)
            found = []
            for pid in _carrying(token):
                with contextlib.suppress(OSError):
                    if b"getppid" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        found.append(pid)
            return found

        deadline = time.monotonic() + 30
        while len(load()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        load = load()
        assert len(load) == 2
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 10
        while any(map(_running, load)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(_running, load))
    finally:
        for pid in _carrying(token):  # the training run, which has no such check
            os.kill(pid, signal.SIGKILL)


@pytest.mark.subprocess
@pytest.mark.parametrize(
    "args",
    [
        ["--load", "-1"],
        ["--load", "100000"],
        ["--epochs", "0"],
        ["--repeats", "-2"],
        ["--runners", "ours,\x1b[31mtorch"],
        ["--runners", ","],
    ],
    ids=["load-negative", "load-huge", "epochs-0", "repeats-negative", "runner-escape", "none"],
)
def test_bench_job_refuses_bad_arguments_in_one_line(args):
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_job.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 2, done
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert "\x1b" not in done.stderr and "\x1b" not in done.stdout
    assert "(4 per CPU)" in done.stderr


@pytest.mark.subprocess
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_while_native_code_holds_the_main_thread_ends_the_program(signum):
    """A native loop holds the main thread (no Python handler can run) for
    minutes, as LLVM optimising a large graph's code does: the stop still
    ends the program within a few seconds, with the usual message and
    status. (Like LLVM's calls through ctypes, the loop lets go of the GIL;
    native code that keeps it stops every thread of the interpreter.)"""
    code = (
        "import numba\n"
        "from pylearn_vae.cli.common import program\n"
        "@numba.njit(cache=False, nogil=True)\n"
        "def spin(n):\n"
        "    s = 0\n"
        "    for i in range(n):\n"
        "        s = (s * 31 + i) % 1000003\n"
        "    return s\n"
        "@program\n"
        "def main(argv=None):\n"
        "    spin(3)\n"
        "    print('spinning', flush=True)\n"
        "    return spin(10**13)\n"
        "raise SystemExit(main())\n"
    )
    token = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO), TOKEN: token},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for_stdout(proc, "spinning")
        time.sleep(0.5)
        start = time.monotonic()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - start
    finally:
        _kill_if_running(proc)
    assert elapsed < 8, elapsed
    expected = "interrupted" if signum == signal.SIGINT else "stopped by SIGTERM"
    assert err.strip().splitlines()[-1] == f"error: {expected}", err
    assert proc.returncode == 128 + signum


@pytest.mark.subprocess
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_train_stopped_while_compiling_stops_at_once(mnist_root, tmp_path, signum):
    """A stop during the compile (a graph no cache holds) ends train.py within
    seconds, not after the compile and a first monitoring pass; nothing is
    left running."""
    from tests.helpers.runs import write_config

    config = write_config(tmp_path)
    # a layer width no earlier run used: the graph is compiled anew
    width = 33 + uuid.uuid4().int % 400
    config.write_text(config.read_text().replace("dim: 32", f"dim: {width}"))
    token = uuid.uuid4().hex
    proc = _start([str(REPO / "scripts" / "train.py"), str(config)], mnist_root, token)
    try:
        _wait_for(proc, "compiling the training")
        time.sleep(0.5)
        start = time.monotonic()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
        elapsed = time.monotonic() - start
    finally:
        _kill_if_running(proc)
    assert elapsed < 8, (elapsed, err)
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1].endswith("before training started"), err
    assert proc.returncode == 128 + signum
    assert _gone_within(token, 5) == []


@pytest.mark.subprocess
def test_a_helper_process_ends_when_its_parent_is_killed_outright():
    """The speed-ups' helpers (the probe, the compile in a second process) end
    by themselves within a second or so of their parent's SIGKILL."""
    code = (
        "import sys, time\n"
        "from pylearn_vae.speedups import support\n"
        "helper = support.start_helper('import time\\ntime.sleep(120)', [], output=False)\n"
        "print(helper.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        helper = int(parent.stdout.readline())
        time.sleep(1)  # (the helper has started its watch)
        assert _running(helper)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 5
        while _running(helper) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(helper)
    finally:
        parent.kill()
