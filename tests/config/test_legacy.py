"""Pylearn2 names: the table resolves, the docs list it, unsupported names are located."""

from pathlib import Path

import pytest

from pylearn_vae.config import keywords, legacy, yaml_parse
from pylearn_vae.config.yaml_parse import ConfigError, _import_dotted

DOC = Path(__file__).resolve().parents[2] / "docs" / "migrating.md"


@pytest.mark.parametrize("old", sorted(legacy.PYLEARN2_NAMES))
def test_every_mapped_name_imports(old):
    assert callable(_import_dotted(legacy.PYLEARN2_NAMES[old], None))


def test_docs_show_the_whole_table():
    doc = DOC.read_text()
    for old, new in legacy.PYLEARN2_NAMES.items():
        assert f"| `{old}` | `{new}` | ported |" in doc
    for old in legacy.UNSUPPORTED:
        assert f"| `{old}` |" in doc
    for owner, refused in keywords.REFUSED.items():
        for keyword in refused:
            assert f"| `{owner}` | `{keyword}` |" in doc


PYLEARN2_TEST_CONFIG = """\
!obj:pylearn2.train.Train {
    dataset: &train !obj:pylearn2.testing.datasets.random_dense_design_matrix {
        rng: !obj:pylearn2.utils.rng.make_np_rng { default_seed: 11223 },
        num_examples: 100, dim: 10, num_classes: 2,
    },
    model: !obj:pylearn2.models.vae.VAE {
        nvis: 10, nhid: 5, learn_prior: 0,
        kl_integrator: !obj:pylearn2.models.vae.kl.DiagonalGaussianPriorPosteriorKL {},
        prior: !obj:pylearn2.models.vae.prior.DiagonalGaussianPrior {},
        conditional: !obj:pylearn2.models.vae.conditional.DiagonalGaussian {
            name: 'conditional',
            mlp: !obj:pylearn2.models.mlp.MLP { layers: [
                !obj:pylearn2.models.mlp.Tanh { layer_name: 'h', dim: 8, irange: 0.01 },
                !obj:pylearn2.models.mlp.CompositeLayer { layer_name: 'out', layers: [
                    !obj:pylearn2.models.mlp.Sigmoid { layer_name: 'mu', dim: 10, irange: 0.01 },
                    !obj:pylearn2.models.mlp.Linear { layer_name: 'log_sigma', dim: 10, irange: 0.01 } ] } ] },
            output_layer_required: 0,
        },
        posterior: !obj:pylearn2.models.vae.conditional.DiagonalGaussian {
            name: 'posterior',
            mlp: !obj:pylearn2.models.mlp.MLP { layers: [
                !obj:pylearn2.models.mlp.RectifiedLinear { layer_name: 'h', dim: 8, irange: 0.01 } ] },
        },
    },
    algorithm: !obj:pylearn2.training_algorithms.sgd.SGD {
        batch_size: 10, learning_rate: 1e-3,
        learning_rule: !obj:pylearn2.training_algorithms.learning_rule.Momentum { init_momentum: 0.5 },
        monitoring_dataset: { train: *train },
        cost: !obj:pylearn2.costs.vae.ImportanceSamplingCriterion { num_samples: 3 },
        termination_criterion: !obj:pylearn2.termination_criteria.And { criteria: [
            !obj:pylearn2.termination_criteria.EpochCounter { max_epochs: 2 },
            !obj:pylearn2.termination_criteria.MonitorBased { channel_name: train_objective, N: 10 } ] },
        update_callbacks: !obj:pylearn2.training_algorithms.sgd.ExponentialDecay { decay_factor: 1.0001, min_lr: 1e-5 },
    },
    extensions: [
        !obj:pylearn2.training_algorithms.sgd.LinearDecayOverEpoch { start: 1, saturate: 2, decay_factor: 0.5 },
        !obj:pylearn2.training_algorithms.learning_rule.MomentumAdjustor { final_momentum: .9, start: 1, saturate: 2 },
    ],
}
"""


@pytest.mark.compiles
def test_pylearn2_test_style_config_trains_unchanged():
    with pytest.warns(legacy.LegacyNameWarning, match="migrate_yaml.py"):
        train = yaml_parse.load(PYLEARN2_TEST_CONFIG)
    assert not train.model.learn_prior
    train.quiet = True
    train.main_loop()
    record = train.model.monitor.channels["train_objective"].val_record
    assert len(record) == 3 and all(v == v for v in record)
    assert train.model.monitor.channels["momentum"].val_record[-1] == pytest.approx(0.9)


def test_unsupported_class_and_keyword_are_located():
    text = "a: 1\nb: !obj:pylearn2.datasets.mnist.MNIST {which_set: train}\n"
    with pytest.raises(
        ConfigError,
        match=r"line 2, column 4: unsupported Pylearn2 name 'pylearn2.datasets.mnist.MNIST'; .*BinarizedMNIST",
    ):
        yaml_parse.load(text)
    text = "!obj:pylearn2.models.mlp.RectifiedLinear {\n  layer_name: h,\n  dim: 3,\n  irange: 0.1,\n  include_prob: 0.5,\n}\n"
    with pytest.raises(
        ConfigError,
        match=r"line 5, column 3: .*'include_prob' are accepted for Pylearn2 compatibility but not implemented",
    ):
        yaml_parse.load(text)
    text = "!obj:pylearn2.training_algorithms.sgd.SGD {learning_rate: 0.1,\n  init_momentum: 0.5}"
    with pytest.raises(
        ConfigError,
        match=r"line 2, column 3: .*'init_momentum' \(momentum moved to the learning rule",
    ):
        yaml_parse.load(text)


def test_renamed_keywords_are_applied_and_reported(monkeypatch):
    monkeypatch.setitem(
        keywords.RENAMED, "pylearn_vae.models.layers.linear.Linear", {"old_dim": "dim"}
    )
    with pytest.warns(legacy.LegacyNameWarning, match="keyword 'old_dim'"):
        layer = yaml_parse.load(
            "!obj:pylearn2.models.mlp.Linear {layer_name: h, old_dim: 4, irange: 0.1}"
        )
    assert layer.dim == 4
