"""Installed split files that are not regular files are refused before NumPy opens them."""

import os

import pytest

from pylearn_vae.datasets.binarized_mnist import BinarizedMNIST


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_fifo_or_device_as_a_split_is_refused(tmp_path, monkeypatch, kind):
    folder = tmp_path / "binarized_mnist"
    folder.mkdir()
    path = folder / "binarized_mnist_test.npy"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(tmp_path))
    with pytest.raises(
        ValueError, match=rf"{path} is not a regular file \(a FIFO, device or folder\)"
    ):
        BinarizedMNIST("test")
