"""scripts/download_binarized_mnist.py against a local server, folders and the mirror."""

import gzip
import socket

import numpy as np
import pytest

from pylearn_vae.cli.download_binarized_mnist import KNOWN_SHA256, main
from pylearn_vae.datasets.binarized_mnist import BinarizedMNIST
from tests.helpers.downloads import Server, amat, installed, leftovers

ROWS = {"train": 12, "valid": 5, "test": 4}
ROW_ARGS = ["--expected-rows", ",".join(f"{k}={v}" for k, v in ROWS.items())]


def synthetic():
    files, arrays = {}, {}
    for i, (split, rows) in enumerate(ROWS.items()):
        files[f"binarized_mnist_{split}.amat"], arrays[split] = amat(rows, seed=i)
    return files, arrays


def run(source, root, *extra):
    return main(
        ["--source", str(source), "--data-path", str(root), *ROW_ARGS, "--timeout", "10", *extra]
    )


@pytest.mark.network
def test_http_success_and_dataset_reads_it(tmp_path, monkeypatch):
    files, arrays = synthetic()
    with Server(files) as server:
        assert run(server.url, tmp_path) == 0
    assert installed(tmp_path) == [f"binarized_mnist_{s}.npy" for s in ("test", "train", "valid")]
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(tmp_path))
    np.testing.assert_array_equal(BinarizedMNIST("train").X, arrays["train"])
    manifest = (tmp_path / "binarized_mnist" / "manifest.json").read_text()
    assert '"sha256"' in manifest and server.url in manifest
    assert leftovers(tmp_path) == []


@pytest.mark.network
def test_gzip_source(tmp_path):
    files, arrays = synthetic()
    gz = {name + ".gz": gzip.compress(body) for name, body in files.items()}
    with Server(gz) as server:
        assert run(server.url, tmp_path) == 0
    np.testing.assert_array_equal(
        np.load(tmp_path / "binarized_mnist" / "binarized_mnist_valid.npy"), arrays["valid"]
    )


@pytest.mark.network
def test_404_names_the_url(tmp_path, capsys):
    files, _ = synthetic()
    del files["binarized_mnist_valid.amat"]
    with Server(files) as server:
        assert run(server.url, tmp_path) == 1
    err = capsys.readouterr().err
    assert f"{server.url}binarized_mnist_valid.amat answered HTTP 404" in err
    assert "binarized_mnist_valid.npy" not in installed(tmp_path)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda b: b[: len(b) // 2 + 101],
            r"the file is truncated: it ends in the middle of line \d+ \(\d+ of 784 values\), after \d+ complete rows",
        ),
        (
            lambda b: b.replace(b"\n", b"\n2 ", 2).replace(b"\n2 ", b"\n", 1),
            r"line 3 holds the value '2'",
        ),
        (
            lambda b: b.replace(b"\n", b" 1\n", 2).replace(b" 1\n", b"\n", 1),
            r"line 2 has 785 values, expected 784",
        ),
        (lambda b: b[: b.index(b"\n") + 1] * 3, r"has 3 rows, expected 12"),
        (lambda b: b.replace(b"1", b"0.5", 1), r"line 1 holds the value '0.5'"),
    ],
    ids=["truncated", "bad-value", "wrong-length", "too-few-rows", "not-binary"],
)
@pytest.mark.network
def test_bad_files_install_nothing(tmp_path, capsys, mutate, message):
    files, _ = synthetic()
    files["binarized_mnist_train.amat"] = mutate(files["binarized_mnist_train.amat"])
    with Server(files) as server:
        assert run(server.url, tmp_path, "--splits", "train") == 1
    err = capsys.readouterr().err
    assert "train" in err
    assert __import__("re").search(message, err), err
    assert installed(tmp_path) == [] and leftovers(tmp_path) == []


@pytest.mark.network
def test_connection_dropped_mid_file(tmp_path, capsys):
    files, _ = synthetic()
    with Server(files, drop={"binarized_mnist_train.amat"}) as server:
        assert run(server.url, tmp_path, "--splits", "train") == 1
    assert "was cut off after" in capsys.readouterr().err
    assert installed(tmp_path) == [] and leftovers(tmp_path) == []


@pytest.mark.network
def test_unreachable_host_suggests_a_mirror(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert run(f"http://127.0.0.1:{port}/", tmp_path, "--splits", "valid") == 1
    err = capsys.readouterr().err
    assert "could not reach 127.0.0.1" in err and "--source" in err and "Traceback" not in err


def test_folder_and_file_url_sources(tmp_path):
    files, arrays = synthetic()
    src = tmp_path / "src"
    src.mkdir()
    for name, body in files.items():
        (src / name).write_bytes(body)
    assert run(src, tmp_path / "a") == 0
    assert run(src.as_uri(), tmp_path / "b") == 0
    for root in ("a", "b"):
        np.testing.assert_array_equal(
            np.load(tmp_path / root / "binarized_mnist" / "binarized_mnist_test.npy"),
            arrays["test"],
        )


def test_rerun_is_a_noop_and_force_redoes(tmp_path, capsys):
    files, _ = synthetic()
    src = tmp_path / "src"
    src.mkdir()
    for name, body in files.items():
        (src / name).write_bytes(body)
    assert run(src, tmp_path) == 0
    target = tmp_path / "binarized_mnist" / "binarized_mnist_train.npy"
    before = target.stat().st_mtime_ns
    capsys.readouterr()
    assert run(src, tmp_path) == 0
    assert "already installed" in capsys.readouterr().err and target.stat().st_mtime_ns == before
    assert run(src, tmp_path, "--force") == 0
    assert "installed 12 x 784" in capsys.readouterr().err


def test_unwritable_data_path_and_bad_arguments(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert run(tmp_path, blocker / "sub") == 1
    assert "cannot write to the data folder" in capsys.readouterr().err
    assert run(tmp_path / "no_such_folder", tmp_path) == 1
    assert "neither a URL nor an existing folder" in capsys.readouterr().err
    assert main(["--splits", "training", "--data-path", str(tmp_path)]) == 1
    assert "unknown split(s) training" in capsys.readouterr().err


def test_real_mirror_installs_verified_splits(mnist_root, monkeypatch):
    folder = mnist_root / "binarized_mnist"
    import hashlib

    for split, digest in KNOWN_SHA256.items():
        array = np.load(folder / f"binarized_mnist_{split}.npy")
        assert hashlib.sha256(array.tobytes()).hexdigest() == digest
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(mnist_root))
    train = BinarizedMNIST("train")
    assert train.X.shape == (50000, 784)
    assert train.X.mean() == pytest.approx(0.130562, abs=1e-6)
