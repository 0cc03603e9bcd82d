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
