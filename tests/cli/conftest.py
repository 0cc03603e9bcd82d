"""Fixtures for command-line tests: a small MNIST model, trained once (the data
mirror and ``mnist_root`` come from ``tests/conftest.py``)."""

from pathlib import Path

import pytest

from tests.helpers.configs import SMALL_MNIST_YAML


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
