"""Training and evaluation run with subnormal numbers flushed to zero, and only they."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from pylearn_vae.ops.denormals import flushed_denormals


def _products() -> list[float]:
    tiny = np.full(3, 1e-39, dtype=np.float32)  # subnormal in float32
    return [
        float((tiny * np.float32(1.0))[0]),
        float(np.float32(1e-30) * np.float32(1e-9)),
        float(np.float64(1e-300) * np.float64(1e-20)),
    ]


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="FTZ/DAZ are x86 modes"
)
def test_subnormals_are_zero_inside_the_block_only():
    before = _products()
    assert before[0] == pytest.approx(1e-39, rel=1e-3) and before[1] > 0 and before[2] > 0
    with flushed_denormals() as done:
        inside = _products()
        with flushed_denormals():  # nested blocks restore what they found
            pass
        still = _products()
    assert done
    assert inside == [0.0, 0.0, 0.0]  # subnormal inputs read as 0, results flushed
    assert still == [0.0, 0.0, 0.0]
    assert _products() == before  # the thread's modes are back


def test_the_modes_come_back_after_an_error():
    before = _products()
    with pytest.raises(RuntimeError, match="inside"):
        with flushed_denormals():
            raise RuntimeError("inside")
    assert _products() == before
