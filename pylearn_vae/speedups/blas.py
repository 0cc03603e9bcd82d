"""A BLAS for PyTensor's C backend, from the OpenBLAS that pip installs.

After a plain ``pip install``, PyTensor's C backend looks for a system BLAS,
usually finds none, warns "could not link to a BLAS installation" and
computes matrix products with slow fallback code. This package depends on
``scipy-openblas32``, the OpenBLAS build that SciPy ships on PyPI, whose
functions carry a symbol prefix (``scipy_sgemm_`` for ``sgemm_``).
:func:`configure_c_blas` sets PyTensor's ``blas__ldflags`` to link it, with
one preprocessor definition per BLAS routine that maps PyTensor's names to
the prefixed ones (PyTensor passes the flags that are not ``-l``/``-L``/``-I``
to the compiler of its BLAS operations).

A ``blas__ldflags`` the user gave (``PYTENSOR_FLAGS`` or ``.pytensorrc``)
always wins.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import re
import shlex
from pathlib import Path

import pytensor

__all__ = ["openblas_ldflags", "configure_c_blas", "user_set_ldflags", "short_blas_spin"]

_log = logging.getLogger(__name__)

#: OpenBLAS's ``OPENBLAS_THREAD_TIMEOUT``: an idle worker thread spins for
#: ``2 ** N`` clock cycles before it sleeps. OpenBLAS's default is 28 (about
#: 0.1 s); 16 is some 20 microseconds.
BLAS_SPIN_EXPONENT = "16"

_LEVEL1 = ("rotg", "rotmg", "rot", "rotm", "swap", "scal", "copy", "axpy", "dot", "dotu", "dotc")
_LEVEL1 += ("nrm2", "asum", "sdot", "dsdot")
_LEVEL2 = ("gemv", "gbmv", "hemv", "hbmv", "hpmv", "symv", "sbmv", "spmv", "trmv", "tbmv")
_LEVEL2 += ("tpmv", "trsv", "tbsv", "tpsv", "ger", "geru", "gerc", "her", "hpr", "her2")
_LEVEL2 += ("hpr2", "syr", "spr", "syr2", "spr2")
_LEVEL3 = ("gemm", "symm", "hemm", "syrk", "herk", "syr2k", "her2k", "trmm", "trsm")
#: Fortran BLAS routine names (with the trailing underscore) to look for.
BLAS_ROUTINES = tuple(
    sorted(
        {f"{t}{r}_" for t in "sdcz" for r in _LEVEL1 + _LEVEL2 + _LEVEL3}
        | {f"i{t}amax_" for t in "sdcz"}
        | {"scasum_", "dzasum_", "scnrm2_", "dznrm2_", "csscal_", "zdscal_", "csrot_", "zdrot_"}
    )
)


def user_set_ldflags() -> bool:
    """Whether the user configured ``blas__ldflags`` (environment or .pytensorrc)."""
    pattern = re.compile(r"blas(__|\.)ldflags|^\s*ldflags\s*=", re.MULTILINE)
    if pattern.search(os.environ.get("PYTENSOR_FLAGS", "")):
        return True
    rc_files = os.environ.get("PYTENSORRC", str(Path.home() / ".pytensorrc"))
    for name in rc_files.split(os.pathsep):
        try:
            if pattern.search(Path(name).expanduser().read_text()):
                return True
        except (OSError, UnicodeDecodeError):
            continue
    return False


def openblas_ldflags() -> str | None:
    """``blas__ldflags`` that link scipy-openblas32, or None if it is not installed."""
    try:
        import scipy_openblas32 as openblas
    except ImportError:
        return None
    lib_dir = Path(openblas.get_lib_dir())
    name = openblas.get_library()
    match = re.search(r"-DBLAS_SYMBOL_PREFIX=(\w+)", openblas.get_pkg_config())
    prefix = match.group(1) if match else ""
    candidates = sorted(lib_dir.glob(f"lib{name}.so*")) + sorted(lib_dir.glob(f"lib{name}.dylib"))
    if not candidates:
        return None
    try:
        library = ctypes.CDLL(str(candidates[0]))
    except OSError:
        return None
    renames = [
        f"-D{routine}={prefix}{routine}"
        for routine in BLAS_ROUTINES
        if prefix and hasattr(library, f"{prefix}{routine}")
    ]
    if prefix and not any(r.startswith("-Dsgemm_=") for r in renames):
        return None
    folder = shlex.quote(str(lib_dir))
    return " ".join([f"-L{folder}", f"-l{name}", f"-Wl,-rpath,{folder}", *renames])


def configure_c_blas() -> str:
    """Have PyTensor's C backend link scipy-openblas32, once per process.

    Leaves a user's own ``blas__ldflags`` alone. Returns the flags in force
    afterwards (empty if no BLAS could be found: PyTensor then warns once
    itself; installing this package's dependencies again fixes it).
    """
    _configure_once()
    return pytensor.config.blas__ldflags


@functools.cache
def _configure_once() -> None:
    if user_set_ldflags():
        return
    flags = openblas_ldflags()
    if flags:
        pytensor.config.blas__ldflags = flags
    else:
        _log.warning(
            "no OpenBLAS for PyTensor's C backend: the package scipy-openblas32 "
            "is missing or unreadable; reinstall with  pip install -e .  (or set "
            "blas__ldflags in PYTENSOR_FLAGS)"
        )


def short_blas_spin() -> bool:
    """Have OpenBLAS's idle worker threads sleep after a short spin.

    After each multi-threaded matrix product, OpenBLAS keeps its worker
    threads spinning for about 0.1 s in case another product follows. A
    training step runs its elementwise loops, patch copies and Python code
    between products on one thread, so the workers spin through all of it,
    and on this project's 2-core hosts the step then sometimes ran at half
    speed for seconds at a time (docs/performance.md). Spinning for some 20
    microseconds instead bridges the gap between two products of one step.

    Sets ``OPENBLAS_THREAD_TIMEOUT``, which an OpenBLAS library reads when it
    is loaded: SciPy's, which Numba calls, and the C backend's are loaded at
    the first compile, after this call; NumPy's own gets the setting only if
    NumPy is not imported yet. A value the user set stands. Returns whether
    it was set here. The command-line programs call it at start.
    """
    if "OPENBLAS_THREAD_TIMEOUT" in os.environ:
        return False
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = BLAS_SPIN_EXPONENT
    return True
