"""Environment variables the programs' libraries would trip over are refused first."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pylearn_vae.cli.environment import problems
from tests.helpers.paths import REPO


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"OMP_NUM_THREADS": "junk"},
            "OMP_NUM_THREADS='junk' is not a number of threads from 1 to 4096",
        ),
        ({"NUMBA_NUM_THREADS": "0"}, "NUMBA_NUM_THREADS='0' is not a number of threads"),
        ({"NUMBA_NUM_THREADS": "4097"}, "NUMBA_NUM_THREADS='4097' is not a number of threads"),
        ({"OMP_NUM_THREADS": "9" * 5000}, "is not a number of threads from 1 to 4096"),
        ({"PYLEARN_VAE_THREADS": "5000"}, "PYLEARN_VAE_THREADS='5000' is not auto or a number"),
        ({"OPENBLAS_NUM_THREADS": "\u00b2"}, "OPENBLAS_NUM_THREADS='²' is not a number"),
        ({"NUMBA_OPT": "fast"}, "NUMBA_OPT='fast' is not 0, 1, 2, 3 or max"),
        ({"PYLEARN_VAE_THREADS": "many"}, "PYLEARN_VAE_THREADS='many' is not auto or a number"),
        ({"PYTENSOR_FLAGS": "floatX=float16"}, "floatX='float16': this package computes in"),
    ],
)
def test_unusable_values_are_named(monkeypatch, environ, message):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert any(message in problem for problem in problems()), problems()


def test_usable_values_pass(monkeypatch):
    for name, value in {
        "OMP_NUM_THREADS": "2",
        "NUMBA_NUM_THREADS": "1",
        "NUMBA_OPT": "max",
        "MKL_NUM_THREADS": "",
        "PYLEARN_VAE_THREADS": "auto",
        "PYTENSOR_FLAGS": "mode=CVM,floatX=float32",
    }.items():
        monkeypatch.setenv(name, value)
    assert problems() == []


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("name", "value", "program", "argument", "problem"),
    [
        (
            "OMP_NUM_THREADS",
            "junk",
            "evaluate.py",
            "m.h5",
            "is not a number of threads from 1 to 4096",
        ),
        (
            "PYLEARN_VAE_THREADS",
            "0",
            "train.py",
            "run.yaml",
            "is not auto or a number of threads from 1 to 4096",
        ),
    ],
)
def test_a_program_started_with_junk_thread_counts_says_which_in_one_line(
    tmp_path, name, value, program, argument, problem
):
    (tmp_path / "run.yaml").write_text((REPO / "yaml" / "vae_mnist.yaml").read_text())
    env = {**os.environ, name: value, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / program), str(tmp_path / argument)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"error: {name}={value!r} {problem}; fix or unset it\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]  # nothing written


def test_the_programs_and_the_job_agree_on_the_most_threads():
    # (two definitions: the programs' check runs before PyTensor is imported, so
    # it cannot import the speed-up wing; checkpoints refuse above the same count)
    from pylearn_vae.cli import environment
    from pylearn_vae.speedups import threads

    assert environment.MAX_THREADS == threads.MAX_THREADS == 4096
