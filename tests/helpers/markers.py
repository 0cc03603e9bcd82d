"""Markers shared by test modules (a module of its own: it decides the
backend when imported, which the factories' importers need not do)."""

from __future__ import annotations

import pytest

from pylearn_vae.compile import is_numba_mode, resolve_mode

#: For tests of the Numba backend only (the suite's default pass runs them).
numba_only = pytest.mark.skipif(
    not is_numba_mode(resolve_mode()),
    reason="a Numba test; the suite's pass on the default (Numba) backend runs it",
)
