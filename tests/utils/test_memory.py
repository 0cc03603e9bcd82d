"""The allocator setting used by the command-line programs."""

import platform

import numpy as np
import pytest

from pylearn_vae.speedups.memory import reuse_freed_memory


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the setting exists only in glibc's malloc"
)
def test_reuse_freed_memory_applies_on_glibc_and_is_idempotent():
    assert reuse_freed_memory() is True
    assert reuse_freed_memory() is True
    # A large temporary freed and allocated again comes back from the heap.
    first = np.empty(5_000_000, dtype=np.float32)
    address = first.ctypes.data
    del first
    second = np.empty(5_000_000, dtype=np.float32)
    assert second.ctypes.data == address
