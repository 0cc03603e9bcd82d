"""The one table of refused Pylearn2 keywords: every entry is live (the
decorated signature has it, or, for older keywords, the loader's advice
names it), defaults pass, anything else is refused by name, from Python and
from YAML, and positional calls keep Pylearn2's order."""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest

from pylearn_vae.config import keywords, yaml_parse
from pylearn_vae.config.errors import ConfigError
from pylearn_vae.errors import UnsupportedOptionError
from pylearn_vae.gui.patch_viewer import PatchViewer
from pylearn_vae.models.mlp import Linear, RectifiedLinear
from pylearn_vae.training_algorithms.sgd import SGD


def _resolve(path):
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError:  # Class.method
        module, _, owner = module.rpartition(".")
        return getattr(getattr(importlib.import_module(module), owner), name)


ENTRIES = [
    (owner, k, rule) for owner, table in keywords.REFUSED.items() for k, rule in table.items()
]


@pytest.mark.parametrize(
    "owner,keyword,rule", ENTRIES, ids=[f"{o.rsplit('.', 1)[-1]}.{k}" for o, k, _ in ENTRIES]
)
def test_every_entry_is_live(owner, keyword, rule):
    target = _resolve(owner)
    parameters = inspect.signature(target).parameters
    if rule.in_signature:
        assert keyword in parameters  # and the decorator checks it (next tests)
        function = target.__init__ if inspect.isclass(target) else target
        assert hasattr(function, "__wrapped__"), f"{owner} is not decorated with pylearn2_keywords"
    else:
        assert keyword not in parameters
        assert keywords.advice_for(target, keyword) == rule.advice


def test_defaults_pass_and_other_values_are_refused_by_name():
    Linear(dim=2, layer_name="h", irange=0.1, sparse_init=None, include_prob=1.0, sparse_stdev=1)
    with pytest.raises(
        UnsupportedOptionError, match=r"RectifiedLinear 'h'.*'sparse_init', 'include_prob'"
    ) as info:
        RectifiedLinear(dim=2, layer_name="h", irange=0.1, sparse_init=15, include_prob=0.5)
    assert info.value.options == ["sparse_init", "include_prob"]
    with pytest.raises(UnsupportedOptionError, match=r"PatchViewer.add_patch: .*'activation'"):
        PatchViewer((1, 1), (2, 2)).add_patch(np.zeros((2, 2)), activation=0.5)
    with pytest.raises(UnsupportedOptionError, match=r"SGD: .*'set_batch_size'"):
        SGD(learning_rate=0.1, set_batch_size=True)


def test_positional_calls_keep_pylearn2s_order():
    # Linear(dim, layer_name, irange, istdev, sparse_init, ...) as in Pylearn2
    with pytest.raises(UnsupportedOptionError, match="sparse_init"):
        Linear(2, "h", 0.1, None, 15)
    layer = Linear(2, "h", 0.1, None, None)
    assert layer.dim == 2 and layer.irange == 0.1


def test_yaml_points_at_the_refused_keyword_and_gives_advice_for_older_ones():
    text = "!obj:pylearn2.models.mlp.Linear {\n  layer_name: h, dim: 2, irange: 0.1,\n  include_prob: 0.5,\n}"
    with pytest.raises(ConfigError, match=r"line 3, column 3: .*'include_prob'"):
        yaml_parse.load(text)
    text = "!obj:pylearn2.training_algorithms.sgd.SGD {\n  learning_rate: 0.1,\n  learning_rule_params: {},\n}"
    with pytest.raises(
        ConfigError, match=r"line 3, column 3: .*learning rule object its own keywords"
    ):
        yaml_parse.load(text)


def test_a_table_entry_without_its_parameter_fails_at_decoration(monkeypatch):
    path = f"{__name__}.test_a_table_entry_without_its_parameter_fails_at_decoration.<locals>.Thing"
    monkeypatch.setitem(keywords.REFUSED, path, {"not_a_parameter": keywords.Refused()})

    with pytest.raises(LookupError, match="not_a_parameter"):

        class Thing:
            @keywords.pylearn2_keywords
            def __init__(self, a=1):
                pass
