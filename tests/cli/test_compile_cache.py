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
    rc.write_text("[global]\nbase_compiledir = /tmp/raw-%(nope)s\n")  # (PyTensor: the raw value)
    assert compile_cache.base_compiledir() == Path("/tmp/raw-%(nope)s")
    # PYTENSOR_FLAGS as PyTensor splits it: shlex, commas, the first "=".
    monkeypatch.setenv("PYTENSOR_FLAGS", "mode=CVM,base_compiledir=~/flags,floatX=float32")
    assert compile_cache.base_compiledir() == tmp_path / "home" / "flags"
    monkeypatch.setenv("PYTENSOR_FLAGS", 'base_compiledir="/a,b"')
    assert compile_cache.base_compiledir() == Path("/a,b")
    for unknown in ("global__base_compiledir=/x", "base_compiledir =/x"):
        monkeypatch.setenv("PYTENSOR_FLAGS", unknown)  # (keys PyTensor does not know)
        assert compile_cache.base_compiledir() == Path("/tmp/raw-%(nope)s")


def _exits(monkeypatch, capsys) -> str:
    monkeypatch.delitem(sys.modules, "pytensor")  # (the check runs before PyTensor is imported)
    with pytest.raises(SystemExit) as info:
        compile_cache.use_writable_cache()
    assert info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("unclosed quote", r"PYTENSOR_FLAGS cannot be read \(No closing quotation\)"),
        ("rc FIFO", r"configuration file \S+rc is not a regular file"),
        ("rc device", r"configuration file /dev/zero is not a regular file"),
        ("rc not INI", r"configuration files cannot be read \(File contains no section"),
        ("unknown user", r"compile cache setting cannot be read"),
    ],
)
def test_settings_pytensor_could_not_read_end_the_program_in_one_line(
    clean_env, monkeypatch, capsys, setting, message
):
    import pytensor  # noqa: F401  (imported again after the test)

    rc = clean_env / "rc"
    if setting == "unclosed quote":
        monkeypatch.setenv("PYTENSOR_FLAGS", 'base_compiledir="/x')
    elif setting == "rc FIFO":
        os.mkfifo(rc)
        monkeypatch.setenv("PYTENSORRC", str(rc))
    elif setting == "rc device":
        monkeypatch.setenv("PYTENSORRC", "/dev/zero")
    elif setting == "rc not INI":
        rc.write_bytes(b"base_compiledir = /x\n")
        monkeypatch.setenv("PYTENSORRC", str(rc))
    else:
        monkeypatch.setenv("PYTENSOR_FLAGS", "base_compiledir=~nosuchuser_pylearn/x")
    err = _exits(monkeypatch, capsys)
    assert re.fullmatch(rf"error: .*{message}.*; fix or unset it\n", err), err


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
