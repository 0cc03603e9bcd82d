"""scripts/train.py end to end: the seed YAML on a subset of the real data."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pylearn_vae import persistence
from pylearn_vae.cli.train import main
from tests.helpers.tiny_run import tiny_yaml

REPO = Path(__file__).resolve().parents[2]
SEED_YAML = REPO / "yaml" / "vae_mnist.yaml"
CONV_YAML = REPO / "yaml" / "conv_vae_mnist.yaml"

#: The tiny run on 400 examples, with its learning rate to fill in for ``LR``.
SMALL_YAML = tiny_yaml(2, examples=400).replace("learning_rate: 0.05", "learning_rate: LR")
assert "learning_rate: LR" in SMALL_YAML


def _subset_copy(tmp_path, config=SEED_YAML) -> Path:
    """A YAML of yaml/, with smaller splits (the test split is ordered by class: shuffle it)."""
    text = config.read_text()
    text = text.replace("which_set: 'train',", "which_set: 'train', stop: 10000,")
    text = text.replace("which_set: 'valid',", "which_set: 'valid', stop: 2000,")
    text = text.replace("which_set: 'test',", "which_set: 'test', shuffle: True, stop: 2000,")
    assert text.count("stop:") == 3
    copy = tmp_path / config.name
    copy.write_text(text)
    return copy


@pytest.mark.slow
@pytest.mark.compiles
def test_seed_yaml_trains_two_epochs_on_a_subset(tmp_path, mnist_root, monkeypatch, capsys):
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(mnist_root))
    config = _subset_copy(tmp_path)
    assert main([str(config), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    for prefix in ("train", "valid", "test"):
        for channel in (
            "objective",
            "expectation_term",
            "kl_divergence_term",
            "reconstruction_mse",
            "posterior_sigma_min",
            "posterior_sigma_max",
            "posterior_sigma_mean",
            "posterior_sigma_std",
        ):
            assert f"\t{prefix}_{channel}: " in out, f"{prefix}_{channel}"
    for channel in (
        "learning_rate",
        "momentum",
        "epochs_seen",
        "examples_seen",
        "seconds_per_epoch",
    ):
        assert f"\t{channel}: " in out
    assert out.count("Monitoring step:") == 3
    best = tmp_path / "vae_mnist_best.h5"
    assert best.exists()
    model = persistence.load(best)
    valid = model.monitor.channels["valid_objective"].val_record
    assert len(valid) == 3 and valid[-1] < valid[0] - 1.0, valid
    examples = model.monitor.channels["examples_seen"].val_record
    assert examples == [0, 10000, 20000]
    lr = model.monitor.channels["learning_rate"].val_record
    assert lr[-1] == pytest.approx(1e-3 / 1.00005**100, rel=1e-5)
    # Pylearn2's wall-clock channels: this epoch's training, and the whole of
    # the previous epoch (known only once its monitoring is done).
    training = model.monitor.channels["training_seconds_this_epoch"].val_record
    total = model.monitor.channels["total_seconds_last_epoch"].val_record
    assert training == model.monitor.channels["seconds_per_epoch"].val_record
    assert training[0] == 0 and min(training[1:]) > 0
    assert total[:2] == [0, 0]
    # epoch 1 as a whole: its training, then monitoring 14,000 examples and
    # saving (an epoch's training may include waiting for a cold compile)
    assert total[2] - training[1] > 0.01, (total, training)


@pytest.mark.slow
@pytest.mark.compiles
def test_conv_yaml_trains_an_epoch_on_a_subset(tmp_path, mnist_root, monkeypatch, capsys):
    """yaml/conv_vae_mnist.yaml (convolutional encoder, Deconv decoder) learns."""
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(mnist_root))
    config = _subset_copy(tmp_path, CONV_YAML)
    assert main([str(config), "--epochs", "1", "--quiet"]) == 0
    assert "finished 1 epoch in " in capsys.readouterr().err
    model = persistence.load(tmp_path / "conv_vae_mnist_best.h5")
    assert [layer.layer_name for layer in model.conditional.mlp.layers] == [
        "h_d_1",
        "to_maps",
        "h_d_2",
        "logits",
        "to_pixels",
    ]
    valid = model.monitor.channels["valid_objective"].val_record
    # 100 Adam steps take the bound from ~543 nats (random logits) to below 250.
    assert len(valid) == 2 and valid[0] > 500 and valid[1] < 250, valid


@pytest.mark.subprocess
def test_script_runs_in_a_subprocess_and_saves(tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_YAML.replace("LR", "0.05"))
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train.py"), str(config), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "finished 2 epochs" in proc.stderr
    model = persistence.load(tmp_path / "small.pkl")
    objective = model.monitor.channels["train_objective"].val_record
    assert len(objective) == 3 and objective[-1] < objective[0]


def test_errors_are_one_paragraph_with_location(tmp_path, capsys):
    assert main([str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    config = tmp_path / "bad.yaml"
    config.write_text(
        SMALL_YAML.replace("learning_rate: LR", "learning_rate: 0.1, learning_rat: 3")
    )
    assert main([str(config)]) == 1
    err = capsys.readouterr().err
    assert re.search(
        rf"{re.escape(str(config))}, line 17, column \d+: .*unexpected keyword argument 'learning_rat'",
        err,
    )
    assert "Traceback" not in err


@pytest.mark.compiles
def test_diverging_run_stops_with_a_clear_message(tmp_path, capsys):
    config = tmp_path / "nan.yaml"
    config.write_text(SMALL_YAML.replace("LR", "1e30"))
    assert main([str(config), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert re.search(
        r"the training objective became (nan|inf) in epoch 1, minibatch \d+ of 8; lower the learning rate",
        err,
    ), err
    assert not (tmp_path / "nan.pkl").exists()


@pytest.mark.compiles
def test_a_config_path_cannot_forge_a_line(tmp_path, capsys):
    """A folder name with a line break and an ``error:`` of its own: every
    message that names the YAML or its checkpoint shows it escaped."""
    from tests.helpers.tiny_run import write_tiny_config

    config = write_tiny_config(tmp_path / "nl\nerror: FORGED", 1)
    assert main([str(config), "--quiet"]) == 0
    capsys.readouterr()
    assert main([str(config), "--quiet", "--resume"]) == 0  # (already finished)
    err = capsys.readouterr().err
    assert "nl\\nerror: FORGED" in err
    assert not any(line.startswith("error: FORGED") for line in err.splitlines()), err
