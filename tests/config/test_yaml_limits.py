"""YAML limits (alias expansion, depth, characters) and the restricted mode used for the
YAML stored in model and checkpoint files."""

from __future__ import annotations

import os
import re
import sys

import pytest

from pylearn_vae.config import yaml_parse
from pylearn_vae.config.yaml_parse import MAX_DEPTH, ConfigError

MODELS = ("pylearn_vae.models", "pylearn_vae.space")


def laughs(levels: int, width: int = 10) -> str:
    lines = ["l0: &l0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_alias_expansion_is_limited_and_located():
    small = yaml_parse.load(laughs(3), instantiate=False)  # 1,111 values: fine
    assert len(small["l2"]) == 10 and small["l2"][0] is small["l1"]
    with pytest.raises(
        ConfigError,
        match=r"^big\.yaml, line 5, column 5: this YAML expands to more than 100,000 values",
    ):
        yaml_parse.load(laughs(9), source="big.yaml", instantiate=False)


def test_depth_is_limited():
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert yaml_parse.load(ok, instantiate=False) is not None
    with pytest.raises(
        ConfigError, match=rf"nested (more than {MAX_DEPTH} levels deep|too deeply)"
    ):
        yaml_parse.load("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), source="d.yaml")
    with pytest.raises(
        ConfigError,
        match=r"^d\.yaml, line 1, column 401: invalid YAML: this YAML is nested more than 100",
    ):
        yaml_parse.load("{a: " * 50_000 + "1" + "}" * 50_000, source="d.yaml")


@pytest.mark.parametrize("reader", ["config", "sweep", "migrate"])
def test_deep_brackets_are_refused_at_the_bracket_in_every_reader(reader):
    """PyYAML's scanner takes time in the square of the bracket depth (3,000
    levels: 2 s, 50,000: 38 s); every reader stops at level MAX_DEPTH + 1.
    Fails if PyYAML stops calling the hook the bounded loader relies on."""
    import time

    from pylearn_vae.cli.migrate_yaml import migrate_text
    from pylearn_vae.errors import SweepSpecError
    from pylearn_vae.sweep.spec import compose

    text = "[" * 50_000 + "]" * 50_000
    read = {
        "config": lambda: yaml_parse.load(text, source="d.yaml", instantiate=False),
        "sweep": lambda: compose(text, "d.yaml"),
        "migrate": lambda: migrate_text(text),
    }[reader]
    start = time.perf_counter()
    with pytest.raises((ConfigError, SweepSpecError, yaml_parse.yaml.YAMLError)) as raised:
        read()
    assert time.perf_counter() - start < 2.0
    assert f"nested more than {MAX_DEPTH} levels deep" in str(raised.value)
    assert "column 101" in str(raised.value)


def test_recursive_alias_and_bad_characters():
    with pytest.raises(
        ConfigError, match=r"r\.yaml, line 1, column 1: an alias refers to a node that contains it"
    ):
        yaml_parse.load("&a [1, *a]", source="r.yaml")
    with pytest.raises(
        ConfigError, match=r"n\.yaml: invalid YAML: character '\\x00' at position 4"
    ):
        yaml_parse.load("key:\x00", source="n.yaml")
    with pytest.raises(ConfigError, match="YAML must be text, got bytes"):
        yaml_parse.load(b"a: 1")


def test_files_that_are_not_utf8_or_not_regular(tmp_path):
    latin = tmp_path / "l.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=rf"^{latin}: not UTF-8 text \(byte 9 is b'\\xe9'\)"):
        yaml_parse.load_path(latin)
    os.mkfifo(tmp_path / "f.yaml")
    with pytest.raises(ConfigError, match=r"f\.yaml: not a regular file"):
        yaml_parse.load_path(tmp_path / "f.yaml")


def test_integer_keywords_refuse_fractions_with_the_key_location():
    text = (
        "!obj:pylearn_vae.training_algorithms.sgd.SGD {\n  learning_rate: 0.1,\n  batch_size: 2.5 }"
    )
    with pytest.raises(
        ConfigError,
        match=r"^s\.yaml, line 3, column 3: .*SGD: batch_size must be an integer, got 2\.5$",
    ):
        yaml_parse.load(text, source="s.yaml")
    sgd = yaml_parse.load(text.replace("2.5", "20.0"))
    assert sgd.batch_size == 20


def test_restricted_mode_names_classes_exactly_and_imports_nothing_else():
    sys.modules.pop("antigravity", None)
    for name in (
        "antigravity.Fly",
        "os.system",
        "pylearn_vae.models.vae.np.load",
        "pylearn_vae.models.vae.VAE.__init__",
        "pylearn_vae.train.Train",
        "eval",
        "pylearn_vae.models.vae.__init__.VAE",
    ):
        with pytest.raises(
            ConfigError,
            match=rf"{re.escape(name)} may not be used here: only classes of pylearn_vae\.models, pylearn_vae\.space, named as module\.Class",
        ):
            yaml_parse.load(f"!obj:{name} {{}}", restrict_to=MODELS, source="m")
    assert "antigravity" not in sys.modules
    assert "pylearn_vae.models.vae.__init__" not in sys.modules
    for tag in ("!pkl: 'x.pkl'", "!import os"):
        with pytest.raises(
            ConfigError, match=r"may not be used in the YAML stored in a model or checkpoint file"
        ):
            yaml_parse.load(
                f"!obj:pylearn_vae.space.VectorSpace {{dim: {tag}}}", restrict_to=MODELS, source="m"
            )
    space = yaml_parse.load("!obj:pylearn_vae.space.VectorSpace {dim: 3}", restrict_to=MODELS)
    assert space.dim == 3


def test_restricted_mode_leaves_variables_as_written(monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "leaked")
    layer = yaml_parse.load(
        "!obj:pylearn_vae.models.mlp.Linear {layer_name: '${SECRET_TOKEN}', dim: 2, irange: 0.1}",
        restrict_to=MODELS,
    )
    assert layer.layer_name == "${SECRET_TOKEN}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: " + "9" * 5000, r"column 4: '9{40}\.\.\. \(5,000 characters\)' is not an integer"),
        ("a: !!int abc", r"column 4: 'abc' is not an integer Python can read"),
        ("a: 2020-99-99", r"column 4: cannot read the timestamp value '2020-99-99' \(ValueError"),
        ("a: !!bool maybe", r"column 4: cannot read the bool value 'maybe' \(KeyError"),
        ("a: !!timestamp abc", r"column 4: cannot read the timestamp value 'abc'"),
        ("a: 1e400", r"column 4: 1e400 is too large for a float \(it would be infinity\)"),
        ("a: -1e400", r"column 4: -1e400 is too large for a float"),
        ("a: !float 1e999", r"column 4: 1e999 is too large for a float"),
    ],
)
def test_numbers_that_overflow_are_located_errors(text, message):
    with pytest.raises(ConfigError, match=rf"^n\.yaml, line 1, {message}"):
        yaml_parse.load(text, source="n.yaml", instantiate=False)


def test_infinity_written_as_such_is_kept():
    assert yaml_parse.load("a: .inf\nb: -.Inf\nc: 1.5e300\n", instantiate=False) == {
        "a": float("inf"),
        "b": float("-inf"),
        "c": 1.5e300,
    }
