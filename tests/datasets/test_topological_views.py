"""Topological views and viewer helpers of DenseDesignMatrix and BinarizedMNIST."""

import numpy as np
import pytensor.tensor as pt
import pytest

from pylearn_vae.compile import function
from pylearn_vae.datasets import DenseDesignMatrix
from pylearn_vae.datasets.binarized_mnist import BinarizedMNIST
from pylearn_vae.models.mlp import MLP, SpaceConverter
from pylearn_vae.space import Conv2DSpace


def test_topo_space_and_views_follow_axes():
    X = np.arange(3 * 6, dtype="float32").reshape(3, 6)
    d = DenseDesignMatrix(X=X, image_shape=(2, 3), axes=("b", "c", 0, 1))
    assert d.X_topo_space == Conv2DSpace(shape=(2, 3), num_channels=1, axes=("b", "c", 0, 1))
    topo = d.get_topological_view()
    assert topo.shape == (3, 1, 2, 3)
    assert topo[2, 0, 1, 0] == X[2, 3]
    np.testing.assert_array_equal(d.get_design_matrix(topo), X)
    np.testing.assert_array_equal(d.get_design_matrix(), X)


def test_get_batch_topo_draws_consecutive_examples_from_the_dataset_rng():
    X = np.arange(10 * 4, dtype="float32").reshape(10, 4)
    d = DenseDesignMatrix(X=X, image_shape=(2, 2), rng=3)
    start = np.random.RandomState(3).randint(10 - 4 + 1)
    batch = d.get_batch_topo(4)
    assert batch.shape == (4, 2, 2, 1)
    np.testing.assert_array_equal(batch.reshape(4, 4), X[start : start + 4])
    with pytest.raises(ValueError, match=r"batch_size must be in \[1, 10\], got 11"):
        d.get_batch_design(11)


def test_no_image_shape_means_no_topological_view():
    d = DenseDesignMatrix(X=np.zeros((2, 5)))
    with pytest.raises(ValueError, match="no image shape"):
        d.X_topo_space  # noqa: B018


def test_adjust_for_viewer():
    d = DenseDesignMatrix(X=np.zeros((2, 3)))
    np.testing.assert_allclose(d.adjust_for_viewer(np.array([[2.0, -4.0, 1.0]])), [[0.5, -1, 0.25]])
    np.testing.assert_array_equal(d.adjust_for_viewer(np.zeros((1, 2))), np.zeros((1, 2)))


def test_binarized_mnist_views(tmp_path, monkeypatch):
    (tmp_path / "binarized_mnist").mkdir()
    digits = (np.random.default_rng(0).random((5, 784)) < 0.5).astype("uint8")
    np.save(tmp_path / "binarized_mnist" / "binarized_mnist_test.npy", digits)
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(tmp_path))
    mnist = BinarizedMNIST("test")
    assert mnist.X_topo_space == Conv2DSpace(shape=(28, 28), num_channels=1)
    topo = mnist.get_topological_view()
    assert topo.shape == (5, 28, 28, 1)
    assert topo[4, 27, 3, 0] == digits[4, 27 * 28 + 3]
    np.testing.assert_array_equal(
        mnist.adjust_for_viewer(np.array([0.0, 0.25, 1.0])), [-1, -0.5, 1]
    )


@pytest.mark.compiles
def test_binarized_mnist_rows_are_the_images_a_conv_encoder_sees(tmp_path, monkeypatch):
    """A SpaceConverter to Conv2DSpace([28, 28], 1), as yaml/conv_vae_mnist.yaml's
    encoder starts, turns design-matrix rows into the dataset's topological view."""
    (tmp_path / "binarized_mnist").mkdir()
    digits = (np.random.default_rng(1).random((3, 784)) < 0.5).astype("uint8")
    np.save(tmp_path / "binarized_mnist" / "binarized_mnist_valid.npy", digits)
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(tmp_path))
    mnist = BinarizedMNIST("valid")
    mlp = MLP(nvis=784, layers=[SpaceConverter("to_image", mnist.X_topo_space)])
    X = pt.matrix("X", dtype="float32")
    images = function([X], mlp.fprop(X))(mnist.get_design_matrix())
    np.testing.assert_array_equal(images, mnist.get_topological_view())
