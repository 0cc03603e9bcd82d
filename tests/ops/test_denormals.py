"""The numerics setting: subnormal numbers flushed to zero inside its blocks, and
only there. (The suite itself runs under the setting: each test here starts
from IEEE gradual underflow.)"""

from __future__ import annotations

import platform

import numpy as np
import pytest

from pylearn_vae import numerics
from pylearn_vae.numerics import flushed_denormals

x86 = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="FTZ/DAZ are x86 modes"
)


pytestmark = pytest.mark.usefixtures("gradual_underflow")


def _products() -> list[float]:
    tiny = np.full(3, 1e-39, dtype=np.float32)  # subnormal in float32
    return [
        float((tiny * np.float32(1.0))[0]),
        float(np.float32(1e-30) * np.float32(1e-9)),
        float(np.float64(1e-300) * np.float64(1e-20)),
    ]


@x86
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


@x86
def test_the_setting_decides_what_applied_does(monkeypatch):
    before = _products()
    monkeypatch.delenv(numerics.ENV_VARIABLE, raising=False)
    assert numerics.flush_denormals_enabled()
    with numerics.applied() as flushed:
        assert flushed and _products() == [0.0, 0.0, 0.0]
        previous = numerics.set_flush_denormals(False)
        try:
            with numerics.applied() as inner:  # off: gradual underflow even inside
                assert not inner and _products() == before
        finally:
            numerics.set_flush_denormals(previous)
    monkeypatch.setenv(numerics.ENV_VARIABLE, "0")
    assert not numerics.flush_denormals_enabled()
    with numerics.applied() as flushed:
        assert not flushed and _products() == before
    with pytest.raises(TypeError, match="True, False or None"):
        numerics.set_flush_denormals("no")
