"""Every configuration in yaml/ builds, and the VampPrior one trains end to end
(shrunk: fewer rows, units and epochs; the same classes, keywords and extensions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pylearn_vae import persistence
from pylearn_vae.config import yaml_parse
from pylearn_vae.job import train_environ
from pylearn_vae.models.vae.conditional import HouseholderFlowGaussian
from pylearn_vae.models.vae.prior import VampPrior
from pylearn_vae.train import Train

YAML = Path(__file__).resolve().parents[2] / "yaml"
CONFIGS = sorted(p.name for p in YAML.glob("*.yaml") if not p.name.startswith("sweep"))


@pytest.fixture
def data(monkeypatch, mnist_root):
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(mnist_root))


@pytest.mark.parametrize("name", CONFIGS)
def test_each_shipped_configuration_builds(name, data):
    path = str(YAML / name)
    train = yaml_parse.load_path(path, environ=train_environ(path))
    assert isinstance(train, Train)
    assert train.model.get_params()


def _shrink(text: str, save_path: Path) -> str:
    replacements = {
        "which_set: 'train',": "which_set: 'train', stop: 300,",
        "which_set: 'valid',": "which_set: 'valid', stop: 100,",
        "num_pseudo_inputs: 500": "num_pseudo_inputs: 7",
        "dim: 300": "dim: 16",
        "nhid: 40": "nhid: 4",
        "max_epochs: 650": "max_epochs: 3",
        "epochs: 100,": "epochs: 2,",
        "batch_size: 250,": "batch_size: 50, theano_function_mode: 'FAST_COMPILE',",
        "${PYLEARN2_TRAIN_FILE_FULL_STEM}_best.h5": str(save_path),
        "${PYLEARN2_TRAIN_FILE_FULL_STEM}_epoch{epoch}.h5": str(save_path.parent / "e{epoch}.h5"),
        "every: 50,": "every: 2,",
    }
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.mark.usefixtures("deliberate_float64")  # the VampPrior's pairwise log-density
@pytest.mark.compiles
@pytest.mark.subprocess
def test_the_vamp_prior_configuration_trains_and_its_best_model_loads(data, tmp_path):
    best = tmp_path / "vamp_best.h5"
    text = _shrink((YAML / "vamp_vae_mnist.yaml").read_text(), best)
    train = yaml_parse.load(text)
    train.quiet = True
    train.main_loop()
    monitor = train.model.monitor
    assert monitor.get_epochs_seen() == 3
    np.testing.assert_allclose(monitor.channels["valid_kl_weight"].val_record, [0, 0, 0.5, 1])
    assert np.isfinite(monitor.channels["valid_objective"].val_record).all()
    model = persistence.load(str(best))
    assert isinstance(model.prior, VampPrior) and isinstance(
        model.posterior, HouseholderFlowGaussian
    )
    assert model.prior.prior_pseudo_inputs.get_value().shape == (7, 784)
    # EpochSnapshots (every 2 epochs here): the model after epoch 2 only
    assert sorted(p.name for p in tmp_path.glob("e*.h5")) == ["e2.h5"]
    snapshot = persistence.load(str(tmp_path / "e2.h5"))
    assert snapshot.monitor.get_epochs_seen() == 2
    np.testing.assert_array_equal(
        snapshot.monitor.channels["valid_objective"].val_record,
        monitor.channels["valid_objective"].val_record[:3],
    )
