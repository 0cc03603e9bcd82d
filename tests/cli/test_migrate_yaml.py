"""scripts/migrate_yaml.py, and the seed document's YAML run as it is."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pylearn_vae.cli.migrate_yaml import main, migrate_text
from pylearn_vae.config import legacy, yaml_parse
from pylearn_vae.job import train_environ
from pylearn_vae.termination_criteria import EpochCounter

REPO = Path(__file__).resolve().parents[2]
SEED = REPO.parent / "shared" / "seed" / "000_8fb329e4122e0863.txt"


def seed_yaml() -> str:
    """The YAML block of the seed document, exactly as published."""
    text = SEED.read_text()
    match = re.search(
        r"Here's the YAML file.*?\{% highlight text %\}\n(.*?)\{% endhighlight %\}", text, re.S
    )
    assert match, "the seed document's YAML block was not found"
    return match.group(1)


MIXED = """\
# A Pylearn2 file: comments mention pylearn2.models.mlp.MLP and stay as they are.
train: !obj:pylearn2.train.Train {
    dataset: &data !obj:pylearn2.testing.datasets.random_dense_design_matrix {
        rng: !obj:pylearn2.utils.rng.make_np_rng {default_seed: 1},  # trailing comment
        num_examples: 20, dim: 4,
    },
    model: !obj:pylearn2.models.mlp.MLP {'nvis': 4, "layers": [!obj:pylearn2.models.mlp.Linear {layer_name: "o", dim: 2, irange: .1}]},
    algorithm: !obj:pylearn2.training_algorithms.sgd.SGD
        {
            learning_rate: 1e-3,
            cost_helper: !import 'pylearn2.costs.vae.VAECriterion',
        },
}
extra:
  - *data
  - !obj:pylearn2.termination_criteria.EpochCounter
      max_epochs: 3
"""


def test_migration_changes_only_names():
    new, edits, problems = migrate_text(MIXED)
    assert not problems
    assert len(edits) == 8
    old_lines, new_lines = MIXED.splitlines(keepends=True), new.splitlines(keepends=True)
    assert len(old_lines) == len(new_lines)
    for old, new_line in zip(old_lines, new_lines):
        if "!obj:pylearn2" in old or "!import" in old:
            assert new_line == old.replace("pylearn2.", "pylearn_vae.")
        else:
            assert new_line == old  # comments, anchors, layout untouched
    assert "'pylearn_vae.costs.vae.VAECriterion'" in new  # quoting kept
    assert migrate_text(new)[0] == new  # idempotent


def test_cli_output_in_place_check_and_report(tmp_path, capsys):
    src = tmp_path / "old.yaml"
    src.write_text(MIXED)
    assert main([str(src), "--check"]) == 1
    assert "8 change(s), 0 problem(s); needs migration" in capsys.readouterr().err
    out = tmp_path / "new.yaml"
    assert main([str(src), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{src}:2: !obj:pylearn2.train.Train -> !obj:pylearn_vae.train.Train" in err, err
    assert src.read_text() == MIXED
    assert main([str(out), "--check"]) == 0
    assert main([str(src), "--in-place"]) == 0
    assert src.read_bytes() == out.read_bytes()
    capsys.readouterr()
    assert main([str(src), "--in-place"]) == 0
    assert "0 change(s)" in capsys.readouterr().err


def test_unmigratable_names_are_reported_with_lines(tmp_path, capsys):
    src = tmp_path / "old.yaml"
    src.write_text(
        "a: 1\nb: !obj:pylearn2.models.mlp.Softmax {n_classes: 10}\nc: !obj:pylearn2.models.mlp.Tanh {}\n"
    )
    assert main([str(src), "-o", str(tmp_path / "new.yaml")]) == 1
    err = capsys.readouterr().err
    assert f"{src}:2: cannot migrate: pylearn2.models.mlp.Softmax cannot be migrated" in err
    assert "!obj:pylearn_vae.models.mlp.Tanh" in (tmp_path / "new.yaml").read_text()
    assert main([str(src), "--check"]) == 1


@pytest.mark.subprocess
def test_script_entry_point(tmp_path):
    src = tmp_path / "seed.yaml"
    src.write_text(seed_yaml())
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "migrate_yaml.py"), str(src), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "20 change(s)" in proc.stderr


def _train_one_short_epoch(text: str, tmp_path: Path, name: str):
    """Load a YAML text, shrink its data sets (the override), train one epoch."""
    config = tmp_path / f"{name}.yaml"
    config.write_text(text)
    train = yaml_parse.load_path(config, environ=train_environ(str(config)))
    monitoring = train.algorithm.monitoring_dataset
    assert monitoring["train"] is train.dataset  # &train / *train: the same object
    train.dataset.X = train.dataset.X[:1000]
    monitoring["valid"].X = monitoring["valid"].X[:500]
    monitoring["test"].X = monitoring["test"].X[::20]  # the test split is ordered by class
    train.algorithm.termination_criterion = EpochCounter(1)
    train.quiet = True
    train.main_loop()
    return train


@pytest.mark.slow
@pytest.mark.compiles
def test_seed_yaml_runs_unchanged_and_migrated_identically(tmp_path, mnist_root, monkeypatch):
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(mnist_root))
    original = seed_yaml()
    with pytest.warns(
        legacy.LegacyNameWarning, match="pylearn2.models.vae.VAE -> pylearn_vae.models.vae.VAE"
    ):
        old = _train_one_short_epoch(original, tmp_path, "seed")
    migrated, edits, problems = migrate_text(original)
    assert (
        len(edits) == 20 and not problems and "pylearn2." not in migrated.replace("PYLEARN2_", "")
    )
    new = _train_one_short_epoch(migrated, tmp_path, "seed_migrated")
    for a, b in zip(old.model.get_param_values(), new.model.get_param_values()):
        np.testing.assert_array_equal(a, b)
    for channel in ("valid_objective", "train_objective", "momentum", "learning_rate"):
        assert (
            old.model.monitor.channels[channel].val_record
            == new.model.monitor.channels[channel].val_record
        )
    valid = old.model.monitor.channels["valid_objective"].val_record
    assert valid[1] < valid[0]
    assert (tmp_path / "seed_best.pkl").exists() and (tmp_path / "seed_migrated_best.pkl").exists()
