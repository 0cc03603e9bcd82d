"""A setting PyTensor cannot use (in ``PYTENSOR_FLAGS`` or a ``.pytensorrc``) ends
every program at once with status 2 and one line naming it: no traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from pylearn_vae.cli import compile_cache
from tests.helpers.paths import REPO


def _run(script: str, *args, flags=None, rc=None, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTENSOR_FLAGS", "PYTENSORRC")}
    env.update(PYTHONPATH=str(REPO), PYTENSORRC=str(rc or "/nonexistent/pytensorrc"))
    if flags is not None:
        env["PYTENSOR_FLAGS"] = flags
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


PROGRAMS = [
    ("train.py", REPO / "yaml" / "vae_mnist.yaml"),
    ("evaluate.py", "model.h5"),
]


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize(("script", "argument"), PROGRAMS, ids=[s for s, _ in PROGRAMS])
@pytest.mark.parametrize(
    ("flags", "named"),
    [
        ("mode=JUNK", r"PYTENSOR_FLAGS mode='JUNK': PyTensor cannot use it: .*Instead got: JUNK"),
        (
            "compiledir_format=%(nokey)s",
            r"PYTENSOR_FLAGS compiledir_format='%\(nokey\)s': PyTensor cannot use it \(PyTensor "
            r"computes compiledir from it\): KeyError: 'nokey'",
        ),
        (
            "floatX=float32,linker=junk",
            r"PYTENSOR_FLAGS linker='junk': PyTensor cannot use it: .*Valid options are",
        ),
    ],
    ids=["mode", "compiledir_format", "linker"],
)
def test_a_flag_pytensor_cannot_use_is_one_line(script, argument, flags, named, tmp_path):
    line = _one_error_line(_run(script, argument, flags=flags, cwd=tmp_path))
    assert re.fullmatch(rf"error: {named}.*; fix or unset it", line), line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_configuration_file_setting_is_named_with_its_file(tmp_path):
    rc = tmp_path / "pytensorrc"
    rc.write_text("[global]\nmode = JUNK\n")
    line = _one_error_line(_run("evaluate.py", "model.h5", rc=rc, cwd=tmp_path))
    assert line.startswith(f"error: PyTensor's configuration file {rc} mode='JUNK': "), line


def test_user_settings_are_read_as_pytensor_reads_them(tmp_path, monkeypatch):
    rc = tmp_path / "pytensorrc"
    rc.write_text("[global]\nmode = FAST_RUN\nfloatX = float64\n[blas]\nldflags = -lblas\n")
    monkeypatch.setenv("PYTENSORRC", str(rc))
    monkeypatch.setenv("PYTENSOR_FLAGS", "floatX=float32,compiledir_format=%(nokey)s")
    where = f"PyTensor's configuration file {rc}"
    assert compile_cache.user_settings() == {
        "mode": ("FAST_RUN", where),
        "floatX": ("float32", "PYTENSOR_FLAGS"),
        "blas__ldflags": ("-lblas", where),
        "compiledir_format": ("%(nokey)s", "PYTENSOR_FLAGS"),
    }
