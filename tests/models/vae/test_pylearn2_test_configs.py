"""The two configurations Pylearn2's VAE tests read by path (test_VAE_cost and
test_IS_cost) are where those tests look, from the root of the source tree,
and train."""

from pathlib import Path

import numpy as np
import pytest

from pylearn_vae.config import yaml_parse

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "name, cost",
    [
        ("test_vae_cost_vae_criterion.yaml", "VAECriterion"),
        ("test_vae_cost_is_criterion.yaml", "ImportanceSamplingCriterion"),
    ],
)
@pytest.mark.compiles
def test_pylearn2_test_configuration_trains_from_the_tree_root(name, cost, monkeypatch):
    monkeypatch.chdir(ROOT)
    train = yaml_parse.load_path(f"pylearn_vae/models/tests/{name}")
    assert type(train.algorithm.cost).__name__ == cost
    assert train.algorithm.cost.num_samples == 2
    train.quiet = True
    train.main_loop()
    objective = train.model.monitor.channels["train_objective"].val_record
    assert len(objective) == 3 and np.isfinite(objective).all()
    assert objective[-1] < objective[0], objective
