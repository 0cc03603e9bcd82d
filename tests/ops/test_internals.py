"""Every PyTensor internal the speed-ups use is where they expect it.

The package names them all in :mod:`pylearn_vae.ops.internals`. When a
supported PyTensor moves one, these tests fail with its name (training would
still run, on PyTensor's own code, after one warning).
"""

from __future__ import annotations

import inspect

import pytensor
import pytest
from packaging.version import Version

from pylearn_vae.ops import internals


@pytest.mark.parametrize("name", sorted(internals.REQUIRED))
def test_each_internal_resolves(name):
    module, attribute = internals.REQUIRED[name]
    assert internals.get(name) is not None, f"{module}.{attribute} has moved"


def test_nothing_is_missing():
    assert internals.missing() == []


def test_function_maker_still_accepts_a_prepared_graph():
    parameters = inspect.signature(internals.get("FunctionMaker").__init__).parameters
    assert {"fgraph", "no_fgraph_prep", "accept_inplace"} <= set(parameters)


def test_the_scalar_calling_convention_is_known_for_this_pytensor():
    """PyTensor 3.0 wraps an elementwise loop's scalar function in a storing
    function; 3.3 calls it directly (and outside loops too). The fused loops
    choose their calling convention from this; a PyTensor the project has not
    seen must be looked at before it is added to setup.cfg's range."""
    version = Version(pytensor.__version__)
    wrapped = internals.core_calls_through_storing_wrapper()
    if version < Version("3.1"):
        assert wrapped
    elif version >= Version("3.3"):
        assert not wrapped
