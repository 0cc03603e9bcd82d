"""The peer scripts of benchmarks/bench_job.py keep the programs' promises:
one-line errors, and a best model saved without writing through a symlink."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from tests.helpers.paths import REPO

pytestmark = pytest.mark.slow

PEERS = REPO / "benchmarks" / "peers"


def _run(script, *args, data=None, timeout=300):
    env = {**os.environ}
    if data is not None:
        env["PYLEARN2_DATA_PATH"] = str(data)
    return subprocess.run(
        [sys.executable, str(PEERS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "-1"], "error: --epochs must be at least 1, got -1"),
        (["--out", "/nonexistent/folder"], "error: --out '/nonexistent/folder' is not a folder"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path, args, message):
    done = _run("jax_vae_mnist.py", *args, data=tmp_path)
    assert done.returncode == 2 and done.stderr.strip() == message, done.stderr


@pytest.mark.subprocess
def test_missing_data_is_one_line(tmp_path):
    done = _run("jax_vae_mnist.py", "--epochs", "1", "--out", str(tmp_path), data=tmp_path)
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr.startswith("error: cannot read the data in") and "Traceback" not in done.stderr
    )
    assert "download_binarized_mnist.py" in done.stderr


@pytest.mark.subprocess
@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_a_missing_library_is_one_line(tmp_path):
    done = _run("torch_vae_mnist.py", "--out", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == "error: torch is not installed (pip install torch)"


@pytest.mark.jax
@pytest.mark.subprocess
def test_the_best_model_replaces_a_symlink_and_leaves_its_target_alone(tmp_path, mnist_root):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "jax_vae_mnist_best.npz").symlink_to(victim)
    done = _run("jax_vae_mnist.py", "--epochs", "1", "--out", str(out), data=mnist_root)
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "keep me"
    best = out / "jax_vae_mnist_best.npz"
    assert not best.is_symlink() and best.read_bytes()[:4] == b"PK\x03\x04"
    assert sorted(p.name for p in out.iterdir()) == ["jax_vae_mnist_best.npz"]
