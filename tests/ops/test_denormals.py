"""The training and evaluation programs run with subnormal numbers flushed to zero."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROGRAM = """
import numpy as np
{setup}
tiny = np.full(3, 1e-39, dtype=np.float32)  # subnormal in float32
print(float((tiny * np.float32(1.0))[0]), float(np.float32(1e-30) * np.float32(1e-9)),
      float(np.float64(1e-300) * np.float64(1e-20)))
"""


def _products(setup: str) -> list[float]:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(setup=setup)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return [float(v) for v in done.stdout.split()]


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="FTZ/DAZ are x86 modes"
)
def test_prepare_process_flushes_subnormals_to_zero():
    before = _products("")
    assert before[0] == pytest.approx(1e-39, rel=1e-3) and before[1] > 0
    after = _products("from pylearn_vae.cli.common import prepare_process\nprepare_process()")
    assert after == [0.0, 0.0, 0.0]  # subnormal inputs read as 0 and results flushed
