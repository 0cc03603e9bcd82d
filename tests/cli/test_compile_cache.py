"""A compile cache the programs cannot write costs only the compile."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pylearn_vae.cli import compile_cache
from tests.helpers.paths import REPO


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("PYTENSOR_FLAGS", raising=False)
    monkeypatch.setenv("PYTENSORRC", str(tmp_path / "no-rc"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_the_folder_is_found_where_pytensor_looks(clean_env, monkeypatch):
    tmp_path = clean_env
    assert compile_cache.base_compiledir() == tmp_path / "home" / ".pytensor"
    rc = tmp_path / "rc"
    rc.write_text("[global]\nbase_compiledir = /tmp/from-rc-%(USER)s\n")
    monkeypatch.setenv("PYTENSORRC", f"{tmp_path / 'missing'}{os.pathsep}{rc}")
    monkeypatch.setenv("USER", "ann")
    assert compile_cache.base_compiledir() == Path("/tmp/from-rc-ann")
    monkeypatch.setenv("PYTENSOR_FLAGS", "mode=CVM, base_compiledir = ~/flags ,floatX=float32")
    assert compile_cache.base_compiledir() == tmp_path / "home" / "flags"
    monkeypatch.setenv("PYTENSOR_FLAGS", "global__base_compiledir=/x")
    assert compile_cache.base_compiledir() == Path("/x")


def test_a_broken_rc_file_is_left_to_pytensor(clean_env, monkeypatch):
    rc = clean_env / "rc"
    rc.write_bytes(b"[global\n\xff")
    monkeypatch.setenv("PYTENSORRC", str(rc))
    assert compile_cache.base_compiledir() == clean_env / "home" / ".pytensor"


@pytest.mark.parametrize("kind", ["file", "fifo", "inside a file"])
def test_a_cache_that_cannot_be_written_is_named_with_the_reason(tmp_path, kind):
    target = tmp_path / "cache"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.write_text("x")
    if kind == "inside a file":
        target = target / "below"
    assert compile_cache._problem(target) in ("File exists", "Not a directory")
    assert compile_cache._problem(tmp_path / "fresh" / "deeper") is None
    assert (tmp_path / "fresh" / "deeper" / "numba").is_dir()


def test_nothing_changes_once_pytensor_is_imported(clean_env, monkeypatch):
    import pytensor  # noqa: F401  (the suite has it imported anyway)

    (clean_env / "home").mkdir()
    (clean_env / "home" / ".pytensor").write_text("x")
    assert compile_cache.use_writable_cache() is None
    assert "PYTENSOR_FLAGS" not in os.environ


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.cold_cache
@pytest.mark.compiles  # (the model fixture trains in this process)
def test_evaluate_runs_when_its_compile_cache_is_a_file(tmp_path, small_mnist_model, mnist_root):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".pytensor").write_text("not a folder\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTENSOR_FLAGS", "PYTENSORRC")}
    env.update(HOME=str(home), PYLEARN2_DATA_PATH=str(mnist_root), PYTHONPATH=str(REPO))
    out = tmp_path / "nll.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "evaluate.py"),
            str(small_mnist_model),
            "--num-samples",
            "4",
            "--max-examples",
            "20",
            "--json",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    warning = re.search(
        r"warning: PyTensor's compile cache (\S+) cannot be written \((.+)\); "
        r"compiling into (\S+) for this run",
        done.stderr,
    )
    assert warning, done.stderr
    assert warning[1] == str(home / ".pytensor")
    assert not Path(warning[3]).exists()  # (removed at exit)
    assert json.loads(out.read_text())["num_examples"] == 20
    assert (home / ".pytensor").read_text() == "not a folder\n"
