"""Fixtures for command-line tests: the real data mirror, installed once."""

from pathlib import Path

import pytest

from pylearn_vae.cli import download_binarized_mnist

MIRROR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "binarized_mnist"


@pytest.fixture(scope="session")
def mirror() -> Path:
    if not (MIRROR / "binarized_mnist_train.amat").exists():
        pytest.fail(
            f"the binarized MNIST mirror is expected at {MIRROR} (../shared beside the clone)"
        )
    return MIRROR


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory, mirror) -> Path:
    """A data root with the three real splits installed from the mirror."""
    root = tmp_path_factory.mktemp("data")
    code = download_binarized_mnist.main(
        ["--source", str(mirror), "--data-path", str(root), "--quiet"]
    )
    assert code == 0
    return root


SMALL_MNIST_YAML = """\
!obj:pylearn_vae.train.Train {
    dataset: &train !obj:pylearn_vae.datasets.binarized_mnist.BinarizedMNIST { which_set: 'train', stop: 3000 },
    model: !obj:pylearn_vae.models.vae.VAE {
        nvis: 784, nhid: 8, seed: 5,
        prior: !obj:pylearn_vae.models.vae.prior.DiagonalGaussianPrior {},
        conditional: !obj:pylearn_vae.models.vae.conditional.BernoulliVector {
            name: 'conditional',
            mlp: !obj:pylearn_vae.models.mlp.MLP { layers: [
                !obj:pylearn_vae.models.mlp.RectifiedLinear { layer_name: 'h', dim: 64, irange: 0.05 } ] } },
        posterior: !obj:pylearn_vae.models.vae.conditional.DiagonalGaussian {
            name: 'posterior',
            mlp: !obj:pylearn_vae.models.mlp.MLP { layers: [
                !obj:pylearn_vae.models.mlp.RectifiedLinear { layer_name: 'h', dim: 64, irange: 0.05 } ] } },
    },
    algorithm: !obj:pylearn_vae.training_algorithms.sgd.SGD {
        batch_size: 100, learning_rate: 0.005,
        learning_rule: !obj:pylearn_vae.training_algorithms.learning_rule.Momentum { init_momentum: 0.5 },
        monitoring_dataset: { 'valid': !obj:pylearn_vae.datasets.binarized_mnist.BinarizedMNIST { which_set: 'valid', stop: 500 } },
        cost: !obj:pylearn_vae.costs.vae.VAECriterion {},
        termination_criterion: !obj:pylearn_vae.termination_criteria.EpochCounter { max_epochs: 3 },
    },
    save_path: 'PATH',
}
"""


@pytest.fixture(scope="session")
def small_mnist_model(tmp_path_factory, mnist_root) -> Path:
    """A small VAE (784-64-8) trained for 3 epochs on 3,000 MNIST digits, saved as .pkl."""
    import os

    from pylearn_vae.config import yaml_parse

    path = tmp_path_factory.mktemp("model") / "small.pkl"
    old = os.environ.get("PYLEARN2_DATA_PATH")
    os.environ["PYLEARN2_DATA_PATH"] = str(mnist_root)
    try:
        train = yaml_parse.load(SMALL_MNIST_YAML.replace("PATH", str(path)))
        train.quiet = True
        train.main_loop()
    finally:
        if old is None:
            del os.environ["PYLEARN2_DATA_PATH"]
        else:
            os.environ["PYLEARN2_DATA_PATH"] = old
    return path
