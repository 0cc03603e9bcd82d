"""BinarizedMNIST reads installed splits and refuses missing or bad files."""

import numpy as np
import pytest

from pylearn_vae.datasets.binarized_mnist import BinarizedMNIST, DataMissingError


def _install(root, which, array):
    folder = root / "binarized_mnist"
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"binarized_mnist_{which}.npy", array)


def test_reads_subsets_and_shuffles(tmp_path, monkeypatch):
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(tmp_path))
    data = (np.arange(30 * 784).reshape(30, 784) % 3 == 0).astype("uint8")
    _install(tmp_path, "valid", data)
    ds = BinarizedMNIST("valid")
    assert ds.X.shape == (30, 784) and ds.X.dtype == np.float32
    np.testing.assert_array_equal(ds.X, data)
    sub = BinarizedMNIST("valid", start=5, stop=9)
    np.testing.assert_array_equal(sub.X, data[5:9])
    shuffled = BinarizedMNIST("valid", shuffle=True)
    assert sorted(map(bytes, shuffled.X.astype("uint8"))) == sorted(map(bytes, data))
    assert shuffled.get_topological_view().shape == (30, 28, 28, 1)
    with pytest.raises(ValueError, match="need 0 <= start < stop <= 30"):
        BinarizedMNIST("valid", start=10, stop=40)


def test_missing_file_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(tmp_path))
    with pytest.raises(
        DataMissingError,
        match="binarized_mnist_test.npy does not exist.*python scripts/download_binarized_mnist.py",
    ):
        BinarizedMNIST("test")
    with pytest.raises(
        ValueError, match="which_set must be one of 'train', 'valid', 'test', got 'validation'"
    ):
        BinarizedMNIST("validation")


def test_bad_files_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(tmp_path))
    _install(tmp_path, "train", np.zeros((4, 783), "uint8"))
    with pytest.raises(ValueError, match=r"has shape \(4, 783\), expected \(rows, 784\)"):
        BinarizedMNIST("train")
    bad = np.zeros((4, 784), "uint8")
    bad[2, 7] = 5
    _install(tmp_path, "train", bad)
    with pytest.raises(ValueError, match="non-binary value 5 at row 2, column 7"):
        BinarizedMNIST("train")
