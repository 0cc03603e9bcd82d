"""Environment variables the programs' libraries read at import, checked first.

A thread count of ``junk`` or ``0``, a ``NUMBA_OPT`` Numba cannot parse or a
``floatX`` this package does not compute in would otherwise surface as a
library's traceback at import or in the middle of a run. :func:`check`
runs before those libraries are imported and ends the program with one
line naming the variable.
"""

from __future__ import annotations

import os
import sys

__all__ = ["check", "problems"]

#: Thread counts: positive integers when set.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


#: The most threads a variable may ask for (a checkpoint keeps the count,
#: and refuses more on resuming). The same as
#: ``pylearn_vae.speedups.threads.MAX_THREADS``, written again here because
#: this check runs before PyTensor, which that package imports.
MAX_THREADS = 1 << 12


def _positive_integer(value: str) -> bool:
    text = value.strip()
    # (length first: int() of thousands of digits is refused, and slow)
    return text.isascii() and text.isdigit() and len(text) <= 8 and 0 < int(text) <= MAX_THREADS


def problems(environ=None) -> list[str]:
    """What is wrong with the variables (an empty list when nothing is)."""
    environ = os.environ if environ is None else environ
    found = []
    for name in THREAD_VARIABLES:
        value = environ.get(name)
        if value is not None and value != "" and not _positive_integer(value):
            found.append(f"{name}={value!r} is not a number of threads from 1 to {MAX_THREADS}")
    chosen = environ.get("PYLEARN_VAE_THREADS", "").strip()
    if chosen and chosen.lower() != "auto" and not _positive_integer(chosen):
        found.append(
            f"PYLEARN_VAE_THREADS={chosen!r} is not auto or a number of threads from 1 to "
            f"{MAX_THREADS}"
        )
    opt = environ.get("NUMBA_OPT")
    if opt is not None and opt.strip() not in ("0", "1", "2", "3", "max"):
        found.append(f"NUMBA_OPT={opt!r} is not 0, 1, 2, 3 or max")
    from pylearn_vae.cli.compile_cache import flags

    try:
        floatx = flags().get("floatX")
    except ValueError:
        floatx = None  # (compile_cache reports an unreadable PYTENSOR_FLAGS)
    if floatx is not None and floatx not in ("float32", "float64"):
        found.append(
            f"PYTENSOR_FLAGS floatX={floatx!r}: this package computes in float32 or float64"
        )
    return found


def check() -> None:
    """End the program (status 2) with one line if the environment is unusable."""
    if "pytensor" in sys.modules:  # (a library user's process: not the programs' to judge)
        return
    found = problems()
    if found:
        from pylearn_vae.text import escape

        print(f"error: {escape('; '.join(found))}; fix or unset it", file=sys.stderr, flush=True)
        raise SystemExit(2)
