"""The C backend links the OpenBLAS pip installed, unless the user configured a BLAS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pylearn_vae.speedups import blas

# Tests of the speed machinery itself: skipped when PYLEARN_VAE_SPEEDUPS=0 turns it off.
pytestmark = pytest.mark.speedups

REPO = Path(__file__).resolve().parents[2]

PROGRAM = """
import warnings
warnings.simplefilter("error")  # PyTensor's "could not link to a BLAS installation" included
import numpy as np
import pytensor, pytensor.tensor as pt
from pylearn_vae.compile import function

x = pt.matrix("x", dtype="float32"); w = pt.matrix("w", dtype="float32"); v = pt.vector("v", dtype="float32")
f = function([x, w, v], [pt.dot(x, w), pt.dot(x, v)], mode="CVM")
ops = sorted({type(n.op).__name__ for n in f.maker.fgraph.apply_nodes})
rng = np.random.default_rng(0)
a, b, c = (rng.standard_normal(s).astype("float32") for s in ((64, 50), (50, 30), (50,)))
m, y = f(a, b, c)
print("OPS", " ".join(ops))
print("CLOSE", np.allclose(m, a @ b, rtol=1e-5, atol=1e-5) and np.allclose(y, a @ c, rtol=1e-5, atol=1e-5))
print("LDFLAGS", pytensor.config.blas__ldflags)
"""


def _run(flags: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTENSOR_FLAGS": flags}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(line.partition(" ")[::2] for line in done.stdout.splitlines())


def test_flags_map_blas_names_to_the_prefixed_library():
    flags = blas.openblas_ldflags()
    assert flags, "scipy-openblas32 is a dependency: it must be installed and readable"
    assert "-lscipy_openblas" in flags and "-Wl,-rpath," in flags
    assert "-Dsgemm_=scipy_sgemm_" in flags and "-Ddgemv_=scipy_dgemv_" in flags
    folder = flags.split()[0][2:]
    assert Path(folder.strip("'")).is_dir()


@pytest.mark.subprocess
def test_c_backend_uses_blas_without_a_warning():
    result = _run("")
    ops = result["OPS"].split()
    assert any(name in ops for name in ("Dot22", "Gemm", "CGemm")), ops  # BLAS matrix product
    assert any(name in ops for name in ("CGemv", "Gemv")), ops  # BLAS matrix-vector product
    assert result["CLOSE"] == "True"
    assert "scipy_openblas" in result["LDFLAGS"]


@pytest.mark.subprocess
def test_a_users_blas_flags_win(tmp_path):
    """An explicitly empty blas__ldflags (no BLAS) is kept: PyTensor's
    fallback code runs, and the results are still right."""
    result = _run("blas__ldflags=")
    assert result["LDFLAGS"] == ""
    assert result["CLOSE"] == "True"


def test_user_set_ldflags_reads_the_environment_and_rc_file(tmp_path, monkeypatch):
    monkeypatch.delenv("PYTENSOR_FLAGS", raising=False)
    rc = tmp_path / "pytensorrc"
    rc.write_text("[global]\nfloatX = float32\n")
    monkeypatch.setenv("PYTENSORRC", str(rc))
    assert not blas.user_set_ldflags()
    rc.write_text("[blas]\nldflags = -lopenblas\n")
    assert blas.user_set_ldflags()
    rc.write_text("")
    monkeypatch.setenv("PYTENSOR_FLAGS", "mode=CVM,blas__ldflags=-lblas")
    assert blas.user_set_ldflags()


IDLE_SPIN = """
import resource, sys, time
from pylearn_vae.speedups import prepare_process
prepare_process()  # as the command-line programs start
import numpy as np
from scipy.linalg import blas  # SciPy's OpenBLAS: the one Numba's products call

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

a = np.ones((600, 600), np.float32)
blas.sgemm(1.0, a, a)
spun = []
for _ in range(5):
    blas.sgemm(1.0, a, a)  # on two threads
    start = cpu()
    time.sleep(0.3)  # nothing to do: what the workers burn now is spinning
    spun.append(cpu() - start)
print("SPUN", max(spun))
"""


def _idle_spin_seconds(**settings) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    done = subprocess.run(
        [sys.executable, "-c", IDLE_SPIN],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**env, "OPENBLAS_NUM_THREADS": "2", **settings},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return float(done.stdout.split("SPUN")[-1])


@pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="OpenBLAS starts no worker thread on one CPU"
)
@pytest.mark.subprocess
def test_the_programs_blas_threads_stop_spinning_soon_after_a_product():
    # OpenBLAS's default (kept when the user sets it) spins a worker for about
    # 0.1 s after each product; the programs' own setting, some 20 microseconds.
    # The most spun of five idle pauses: a busy machine can deschedule the
    # spinning worker for part of one pause (0.04 s seen on CI), not of all.
    default = _idle_spin_seconds(OPENBLAS_THREAD_TIMEOUT="28")
    ours = _idle_spin_seconds()
    assert default > 0.03, (default, ours)
    assert ours < min(0.015, default / 4), (default, ours)
