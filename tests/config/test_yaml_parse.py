"""yaml_parse: tags, anchors, substitution, and located error messages."""

import pickle

import pytest

from pylearn_vae import persistence
from pylearn_vae.config import yaml_parse
from pylearn_vae.config.legacy import LegacyNameWarning
from pylearn_vae.config.yaml_parse import ConfigError, ObjectProxy
from pylearn_vae.datasets import DenseDesignMatrix
from pylearn_vae.models.mlp import Linear, RectifiedLinear


def test_obj_tag_builds_objects_with_keyword_arguments():
    layer = yaml_parse.load(
        "!obj:pylearn_vae.models.mlp.RectifiedLinear {layer_name: h, dim: 3, irange: 0.5}"
    )
    assert isinstance(layer, RectifiedLinear)
    assert (layer.layer_name, layer.dim, layer.irange) == ("h", 3, 0.5)


def test_floats_without_dot_and_float_tag():
    out = yaml_parse.load("{a: 1e-3, b: -2E+2, c: !float '5', d: 1.5, e: 7, f: '1e-3', g: .5}")
    assert out == {"a": 1e-3, "b": -200.0, "c": 5.0, "d": 1.5, "e": 7, "f": "1e-3", "g": 0.5}
    assert isinstance(out["a"], float) and isinstance(out["e"], int)


def test_import_tag():
    out = yaml_parse.load(
        "{f: !import pylearn_vae.models.mlp.Linear, m: !import 'pylearn_vae.space'}"
    )
    assert out["f"] is Linear
    assert out["m"].__name__ == "pylearn_vae.space"


def test_anchor_and_alias_are_the_same_object():
    text = """
    a: &d !obj:pylearn_vae.testing.datasets.random_binary_design_matrix {rng: 0, num_examples: 5, dim: 3}
    b: {train: *d}
    c: [*d]
    """
    out = yaml_parse.load(text)
    assert isinstance(out["a"], DenseDesignMatrix)
    assert out["b"]["train"] is out["a"] and out["c"][0] is out["a"]


def test_environment_substitution(monkeypatch):
    monkeypatch.setenv("PVAE_TEST_DIR", "/data")
    out = yaml_parse.load(
        "{p: '${PVAE_TEST_DIR}/x_${STEM}.pkl', q: 'no vars'}", environ={"STEM": "run"}
    )
    assert out == {"p": "/data/x_run.pkl", "q": "no vars"}
    # environ wins over the process environment
    assert yaml_parse.load("'${PVAE_TEST_DIR}'", environ={"PVAE_TEST_DIR": "mine"}) == "mine"


def test_parse_without_instantiating_imports_nothing():
    out = yaml_parse.load("!obj:no_such_package.Thing {x: 1}", instantiate=False)
    assert isinstance(out, ObjectProxy) and out.callable_name == "no_such_package.Thing"


def test_pkl_tag_loads_through_safe_loader(tmp_path):
    path = tmp_path / "d.pkl"
    persistence.save(path, {"k": [1, 2]})
    assert yaml_parse.load(f"!pkl: '{path}'") == {"k": [1, 2]}
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(print))
    with pytest.raises(ConfigError, match="line 1.*not on pylearn_vae's allow-list"):
        yaml_parse.load(f"!pkl: '{evil}'")


def test_pylearn2_names_resolve_and_are_reported():
    with pytest.warns(
        LegacyNameWarning, match="pylearn2.models.mlp.Linear -> pylearn_vae.models.mlp.Linear"
    ):
        layer = yaml_parse.load(
            "!obj:pylearn2.models.mlp.Linear {layer_name: o, dim: 2, istdev: 0.1}"
        )
    assert isinstance(layer, Linear)


# --- errors, with file, line and column -----------------------------------------

ERRORS = [
    (
        "x: 1\ny: !obj:pylearn_vae.models.mlp.RectifiedLinaer {}\n",
        r"<string>, line 2, column 4: 'pylearn_vae.models.mlp' has no attribute 'RectifiedLinaer'; did you mean pylearn_vae.models.mlp.RectifiedLinear\?",
    ),
    (
        "\n!obj:pylearn_vae.no_such_module.Thing {}\n",
        r"line 2, column 1: 'pylearn_vae' has no attribute 'no_such_module'",
    ),
    (
        "!obj:numpy_nonexistent_pkg.Thing {}",
        r"line 1, column 1: no module named 'numpy_nonexistent_pkg'",
    ),
    (
        "!obj:pylearn_vae.models.mlp.Linear {\n  layer_name: h,\n  dim: 2,\n  irnage: 0.1}\n",
        r"line 4, column 3: pylearn_vae.models.mlp.Linear got an unexpected keyword argument 'irnage' \(did you mean 'irange'\?\); accepted: dim, layer_name, irange",
    ),
    (
        "!obj:pylearn_vae.models.mlp.RectifiedLinear {layer_name: h, dim: 2, irange: 1, bogus: 1}",
        r"unexpected keyword argument 'bogus'; accepted: left_slope, dim, layer_name",
    ),
    (
        "\n\n  - !obj:pylearn_vae.models.mlp.Linear {layer_name: h}",
        r"line 3, column 5: pylearn_vae.models.mlp.Linear is missing required argument\(s\): dim",
    ),
    (
        "a: '${PVAE_SURELY_UNDEFINED}'",
        r"line 1, column 4: environment variable \$\{PVAE_SURELY_UNDEFINED\} is not defined",
    ),
    ("a: 1\nb: 2\na: 3\n", r"line 3, column 1: duplicate key 'a' \(first given at line 1\)"),
    (
        "!obj:pylearn_vae.models.mlp.Linear {layer_name: h, dim: 0, irange: 1}",
        r"line 1, column 1: building pylearn_vae.models.mlp.Linear failed: ValueError: layer 'h': dim must be a positive integer, got 0",
    ),
    ("a: [1, 2\n", r"invalid YAML"),
    ("a: !weird 3", r"line 1, column 4: unknown YAML tag '!weird'"),
    (
        "!obj:pylearn2.models.mlp.Softmax {}",
        r"line 1, column 1: unsupported Pylearn2 name 'pylearn2.models.mlp.Softmax'; .*not provided",
    ),
    ("!obj:pylearn_vae.models.mlp.Linear [1, 2]", r"must be followed by a mapping"),
]


@pytest.mark.parametrize(("text", "pattern"), ERRORS)
def test_errors_are_located_and_explained(text, pattern):
    with pytest.raises(ConfigError, match=pattern):
        yaml_parse.load(text)


def test_load_path_names_the_file(tmp_path):
    path = tmp_path / "conf.yaml"
    path.write_text("a: 1\nb: !obj:pylearn_vae.models.mlp.Nope {}\n")
    with pytest.raises(ConfigError, match=rf"{path}, line 2, column 4: .*no attribute 'Nope'"):
        yaml_parse.load_path(path)
    with pytest.raises(ConfigError, match="cannot read YAML file"):
        yaml_parse.load_path(tmp_path / "missing.yaml")


def test_loader_leaves_pyyaml_global_state_alone():
    import yaml

    yaml_parse.load("{a: 1e-3}")
    assert yaml.safe_load("a: 1e-3") == {"a": "1e-3"}
    assert "!obj:" not in yaml.SafeLoader.yaml_multi_constructors
