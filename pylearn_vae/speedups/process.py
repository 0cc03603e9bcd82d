"""Process settings for a program whose main job is training or evaluating.

Each is made only where the user has not made it (their environment
variable stands) and only before the library it concerns reads it.
"""

from __future__ import annotations

import os
import sys

from pylearn_vae.speedups.blas import short_blas_spin
from pylearn_vae.speedups.memory import reuse_freed_memory

__all__ = ["prepare_process", "quicker_numba_compiles", "NUMBA_OPT_LEVEL"]

#: LLVM optimisation level for Numba in the command-line programs.
NUMBA_OPT_LEVEL = "2"


def quicker_numba_compiles() -> bool:
    """Have Numba optimise at LLVM level 2 instead of 3 in this process.

    A cold compile is quicker and the step as fast: the elementwise loops are
    force-inlined and vectorised at level 2 as well (docs/performance.md).
    Only done when ``NUMBA_OPT`` is not set (the user's choice stands) and
    Numba is not yet imported (it reads the variable once); returns whether
    the level was set.
    """
    if "NUMBA_OPT" in os.environ or "numba" in sys.modules:
        return False
    os.environ["NUMBA_OPT"] = NUMBA_OPT_LEVEL
    return True


def prepare_process() -> None:
    """Freed memory stays in the process, Numba compiles at LLVM level 2 and
    OpenBLAS's idle threads sleep soon (each explained where it is defined)."""
    reuse_freed_memory()
    quicker_numba_compiles()
    short_blas_spin()
