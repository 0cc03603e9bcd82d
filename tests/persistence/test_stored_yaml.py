"""Building a model file's stored YAML: a ``MemoryError`` is told apart by the
exception chain, not by the words of a message."""

from __future__ import annotations

import sys

import pytest

from pylearn_vae.config.yaml_parse import ConfigError
from pylearn_vae.errors import ModelFileError
from pylearn_vae.persistence.stored_yaml import build_model, out_of_memory
from pylearn_vae.space import VectorSpace

SPACE_YAML = "!obj:pylearn_vae.space.VectorSpace { dim: 4 }"
BUDGET = "needs more than the"


class OutOfRoom(MemoryError):
    """A MemoryError whose name does not say so."""


def _chained(inner: BaseException, how: str) -> ConfigError:
    outer = ConfigError("building X failed", "m.h5:model_yaml, line 1")
    if how == "cause":
        outer.__cause__ = inner
    else:
        outer.__context__ = inner
    return outer


@pytest.mark.parametrize("how", ["cause", "context"])
def test_a_memory_error_anywhere_in_the_chain_is_found(how):
    assert out_of_memory(MemoryError())
    assert out_of_memory(_chained(OutOfRoom(), how))
    middle = _chained(MemoryError(), how)
    assert out_of_memory(_chained(middle, "cause"))


def test_words_alone_are_not_a_memory_error():
    assert not out_of_memory(ConfigError("MemoryError: said the file", "m.h5"))
    assert not out_of_memory(_chained(ValueError("MemoryError"), "cause"))


def test_a_cycle_in_the_chain_ends():
    first, second = ValueError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first
    assert not out_of_memory(first)


def _raising(exc):
    def init(self, *args, **kwargs):
        raise exc

    return init


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the budget uses RLIMIT_AS")
def test_a_memory_error_under_another_name_is_the_budget(monkeypatch):
    monkeypatch.setattr(VectorSpace, "__init__", _raising(OutOfRoom()))
    with pytest.raises(ModelFileError, match=BUDGET):
        build_model(SPACE_YAML, "m.h5", [(4,)])


def test_a_message_that_mentions_memory_error_is_not_the_budget(monkeypatch):
    monkeypatch.setattr(VectorSpace, "__init__", _raising(ValueError("no MemoryError here")))
    with pytest.raises(ModelFileError) as raised:
        build_model(SPACE_YAML, "m.h5", [(4,)])
    assert BUDGET not in str(raised.value)
    assert "cannot rebuild the model" in str(raised.value)
