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


def test_a_split_declaring_more_rows_than_the_real_one_is_refused(tmp_path, monkeypatch):
    # A sparse file: a million rows declared, a few kB on disk.
    import numpy as np

    folder = tmp_path / "binarized_mnist"
    folder.mkdir()
    path = folder / "binarized_mnist_test.npy"
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 784), np.uint8))
    header["shape"] = (1_000_000, 784)
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.truncate(handle.tell() + 1_000_000 * 784)
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(tmp_path))
    with pytest.raises(ValueError, match=r"has 1,000,000 rows, more than the 10,000 of"):
        BinarizedMNIST("test")


def test_a_data_path_of_an_unknown_user_is_a_clear_error(monkeypatch, capsys):
    from pylearn_vae.cli.download_binarized_mnist import main
    from pylearn_vae.errors import DataMissingError

    monkeypatch.setenv("PYLEARN2_DATA_PATH", "~no_such_user_pylearn/data")
    with pytest.raises(DataMissingError, match=r"PYLEARN2_DATA_PATH=~no_such_user_pylearn/data"):
        BinarizedMNIST("test")
    assert main(["--splits", "test"]) == 1
    assert "error: the data folder cannot be used" in capsys.readouterr().err
