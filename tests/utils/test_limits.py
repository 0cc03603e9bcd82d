"""The memory budget that bounds building a model from a file's description."""

from __future__ import annotations

import resource
import sys

import numpy as np
import pytest

from pylearn_vae.utils.limits import mapped_bytes, memory_budget

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the budget uses Linux's RLIMIT_AS"
)


def test_an_allocation_beyond_the_budget_fails_and_the_limit_is_restored():
    before = resource.getrlimit(resource.RLIMIT_AS)
    with pytest.raises(MemoryError), memory_budget(64 << 20):
        np.ones(1 << 28)  # 2 GiB
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    assert np.ones(1 << 24).sum() == 1 << 24  # 128 MiB: fine again


def test_an_allocation_within_the_budget_succeeds():
    with memory_budget(256 << 20):
        assert np.ones(1 << 22).sum() == 1 << 22  # 32 MiB


def test_a_tighter_limit_already_set_is_kept():
    before = resource.getrlimit(resource.RLIMIT_AS)
    with memory_budget(64 << 20):
        inner = resource.getrlimit(resource.RLIMIT_AS)
        with memory_budget(1 << 40):
            assert resource.getrlimit(resource.RLIMIT_AS) == inner
        assert resource.getrlimit(resource.RLIMIT_AS) == inner
    assert resource.getrlimit(resource.RLIMIT_AS) == before


def test_mapped_bytes_grows_with_a_mapping():
    start = mapped_bytes()
    block = np.ones(1 << 24)  # 128 MiB
    assert mapped_bytes() - start >= 100 << 20
    del block
