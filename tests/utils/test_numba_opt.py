"""The command-line programs have Numba optimise at LLVM level 2 unless told otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import sys
{before}
from pylearn_vae.speedups.process import quicker_numba_compiles
changed = quicker_numba_compiles()
import numba
print(changed, int(numba.config.OPT))
"""


def probe(before="", **env_extra):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_OPT"}
    env.update(env_extra, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(before=before)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize(
    ("before", "env", "expected"),
    [
        ("", {}, ["True", "2"]),
        ("", {"NUMBA_OPT": "3"}, ["False", "3"]),  # the user's choice stands
        ("import numba", {}, ["False", "3"]),  # too late to change: left alone
    ],
)
@pytest.mark.subprocess
def test_level_two_unless_chosen_or_too_late(before, env, expected):
    assert probe(before, **env) == expected
