"""Every configuration in yaml/ builds, and the VampPrior and two-layer ones train
end to end (shrunk: fewer rows, units and epochs; the same classes, keywords
and extensions)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from pylearn_vae import persistence
from pylearn_vae.config import yaml_parse
from pylearn_vae.job import TrainingJob, train_environ
from pylearn_vae.models.vae.conditional import HouseholderFlowGaussian
from pylearn_vae.models.vae.hierarchical import HierarchicalVAE
from pylearn_vae.models.vae.prior import VampPrior
from pylearn_vae.train import Train
from tests.helpers.tiny_run import stopped_after_epoch

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


def _shrink(text: str, save_path: Path, max_epochs: str = "max_epochs: 650") -> str:
    replacements = {
        max_epochs: "max_epochs: 3",
        "which_set: 'train',": "which_set: 'train', stop: 300,",
        "which_set: 'valid',": "which_set: 'valid', stop: 100,",
        "num_pseudo_inputs: 500": "num_pseudo_inputs: 7",
        "dim: 300": "dim: 16",
        "nhid: 40": "nhid: 4",
        "epochs: 100,": "epochs: 2,",
        "batch_size: 250,": "batch_size: 50, theano_function_mode: 'FAST_COMPILE',",
        "${PYLEARN2_TRAIN_FILE_FULL_STEM}_best.h5": str(save_path),
        "${PYLEARN2_TRAIN_FILE_FULL_STEM}_epoch{epoch}.h5": str(save_path.parent / "e{epoch}.h5"),
    }
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    text, snapshots = re.subn(r"every: \d+,", "every: 2,", text)
    assert snapshots == 1
    # averaging, where a YAML has it, from the first epoch on
    return re.sub(r"(PolyakAveraging \{\s*start:) \d+,", r"\1 1,", text)


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


@pytest.mark.usefixtures("deliberate_float64")  # the VampPrior's pairwise log-density
@pytest.mark.compiles
@pytest.mark.subprocess
def test_the_two_layer_configuration_trains_resumes_bit_exactly_and_evaluates(data, tmp_path):
    """yaml/hvae_mnist.yaml, shrunk: 3 epochs straight, and 2 epochs, a stop and
    --resume, end with the same parameters bit for bit; the best model (HDF5)
    loads as a HierarchicalVAE, and evaluate.py and show_samples.py take it."""
    from tests.helpers.runs import run_script

    def config(folder: Path) -> Path:
        folder.mkdir()
        text = _shrink(
            (YAML / "hvae_mnist.yaml").read_text(), folder / "best.h5", "max_epochs: 600"
        )
        (folder / "hvae.yaml").write_text(text)
        return folder / "hvae.yaml"

    straight = TrainingJob(config(tmp_path / "straight"), quiet=True).run()
    stopped = config(tmp_path / "stopped")

    stopped_after_epoch(stopped, 2)
    resumed = TrainingJob(stopped, quiet=True, resume=True).run()
    for a, b in zip(straight.model.get_params(), resumed.model.get_params(), strict=True):
        np.testing.assert_array_equal(a.get_value(), b.get_value(), err_msg=a.name)
    assert resumed.model.monitor.get_epochs_seen() == 3

    best = tmp_path / "straight" / "best.h5"
    model = persistence.load(str(best))
    assert isinstance(model, HierarchicalVAE) and isinstance(model.prior, VampPrior)
    assert model.bottom_nhid == 4 and model.nhid == 4
    done = run_script(
        "evaluate.py",
        best,
        "--num-samples",
        "20",
        "--max-examples",
        "30",
        "--json",
        tmp_path / "e.json",
    )
    assert done.returncode == 0, done.stderr
    import json

    result = json.loads((tmp_path / "e.json").read_text())
    assert 0 < result["nll"] <= result["negative_elbo"], result  # (the same log-weights)
    shown = run_script(
        "show_samples.py", best, "--out", tmp_path / "s.png", "--rows", "2", "--cols", "3"
    )
    assert shown.returncode == 0, shown.stderr
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
