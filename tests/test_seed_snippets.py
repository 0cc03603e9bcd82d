"""The seed document's evaluation snippets, run with only their imports renamed.

``show`` and ``show_samples`` below are the post's code with ``pylearn2`` ->
``pylearn_vae``, ``theano`` -> ``pytensor`` and Python 3's ``range``;
``print_nll`` follows the post's later NLL script (the same calls:
``model.dataset_yaml_src``, ``get_design_matrix``, ``as_floatX``,
``log_likelihood_approximation``). They run on a tiny VAE built by ``Train``
from YAML on a 110-digit stand-in for binarized MNIST, after a round trip
through a pickle and an HDF5 model file.
"""

import logging

import numpy
import pytensor
import pytensor.tensor as T
import pytest

from pylearn_vae.config import yaml_parse
from pylearn_vae.gui.patch_viewer import PatchViewer
from pylearn_vae.utils import as_floatX, serial

TRAIN_YAML = """\
!obj:pylearn_vae.train.Train {
    dataset: &train !obj:pylearn_vae.datasets.binarized_mnist.BinarizedMNIST {
        which_set: 'train', stop: 110,
    },
    model: !obj:pylearn_vae.models.vae.VAE {
        nvis: 784, nhid: 2, seed: 1,
        prior: !obj:pylearn_vae.models.vae.prior.DiagonalGaussianPrior {},
        conditional: !obj:pylearn_vae.models.vae.conditional.BernoulliVector {
            name: 'conditional',
            mlp: !obj:pylearn_vae.models.mlp.MLP { layers: [
                !obj:pylearn_vae.models.mlp.RectifiedLinear { layer_name: 'h', dim: 4, irange: 0.1 } ] } },
        posterior: !obj:pylearn_vae.models.vae.conditional.DiagonalGaussian {
            name: 'posterior',
            mlp: !obj:pylearn_vae.models.mlp.MLP { layers: [
                !obj:pylearn_vae.models.mlp.RectifiedLinear { layer_name: 'h', dim: 4, irange: 0.1 } ] } },
    },
    algorithm: !obj:pylearn_vae.training_algorithms.sgd.SGD {
        batch_size: 10, learning_rate: 0.01,
        cost: !obj:pylearn_vae.costs.vae.VAECriterion {},
        termination_criterion: !obj:pylearn_vae.termination_criteria.EpochCounter { max_epochs: 1 },
    },
}
"""


def read_png_size(path):
    """(height, width) from a PNG's header."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    return int.from_bytes(header[20:24], "big"), int.from_bytes(header[16:20], "big")


# ---- the seed document's show / show_samples (imports renamed) ------------


def show(vis_batch, dataset, mapback, pv, rows, cols):
    # Random selection of a subset of vis_batch to display
    index_array = numpy.arange(vis_batch.shape[0])
    vis_batch_subset = vis_batch[index_array[: rows * cols]]

    display_batch = dataset.adjust_for_viewer(vis_batch_subset)
    if display_batch.ndim == 2:
        display_batch = dataset.get_topological_view(display_batch)
    display_batch = display_batch.transpose(
        tuple(dataset.X_topo_space.axes.index(axis) for axis in ("b", 0, 1, "c"))
    )
    if mapback:
        design_vis_batch = vis_batch_subset
        if design_vis_batch.ndim != 2:
            design_vis_batch = dataset.get_design_matrix(design_vis_batch)
        mapped_batch_design = dataset.mapback_for_viewer(design_vis_batch)
        mapped_batch = dataset.get_topological_view(mapped_batch_design)
    for i in range(rows):
        row_start = cols * i
        for j in range(cols):
            pv.add_patch(display_batch[row_start + j, :, :, :], rescale=False)
            if mapback:
                pv.add_patch(mapped_batch[row_start + j, :, :, :], rescale=False)
    pv.show()


def show_samples(model):
    num_samples = 100
    rows = 10
    cols = 10

    dataset_yaml_src = model.dataset_yaml_src
    dataset = yaml_parse.load(dataset_yaml_src)

    vis_batch = dataset.get_batch_topo(num_samples)
    rval = tuple(
        vis_batch.shape[dataset.X_topo_space.axes.index(axis)] for axis in ("b", 0, 1, "c")
    )
    _, patch_rows, patch_cols, channels = rval
    mapback = hasattr(dataset, "mapback_for_viewer")
    pv = PatchViewer(
        (rows, cols * (1 + mapback)), (patch_rows, patch_cols), is_color=(channels == 3)
    )

    samples, expectations = model.sample(num_samples)
    f = pytensor.function(inputs=[], outputs=expectations)
    samples_batch = f()
    show(samples_batch, dataset, mapback, pv, rows, cols)


def print_nll(model, num_samples=5, batch_size=10):
    dataset = yaml_parse.load(model.dataset_yaml_src)
    data = as_floatX(dataset.get_design_matrix())
    X = T.matrix("X")
    nll = -model.log_likelihood_approximation(X, num_samples).mean()
    f = pytensor.function([X], nll)
    batches = [f(data[i : i + batch_size]) for i in range(0, len(data), batch_size)]
    return float(numpy.mean(batches))


# ---- fixtures ---------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    """120 random binary 'digits' (the snippet asks for a batch of 100)."""
    return (numpy.random.default_rng(0).random((120, 784)) < 0.3).astype("uint8")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, digits):
    root = tmp_path_factory.mktemp("data")
    (root / "binarized_mnist").mkdir()
    numpy.save(root / "binarized_mnist" / "binarized_mnist_train.npy", digits)
    return root


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory, data_root):
    """The model built by Train from YAML, saved as .pkl and .h5 (not trained:
    the snippets only need a model and its training set's YAML)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYLEARN2_DATA_PATH", str(data_root))
        train = yaml_parse.load(TRAIN_YAML)
    folder = tmp_path_factory.mktemp("models")
    paths = {"pkl": folder / "model.pkl", "h5": folder / "model.h5"}
    for path in paths.values():
        serial.save(path, train.model)
    return train, paths


# ---- tests ------------------------------------------------------------------


def test_train_stores_the_training_sets_yaml_on_the_model(saved_models):
    train, _ = saved_models
    src = train.model.dataset_yaml_src
    assert src == train.dataset.yaml_src
    assert src.startswith("!obj:pylearn_vae.datasets.binarized_mnist.BinarizedMNIST {")
    assert "stop: 110" in src and "which_set" in src


@pytest.mark.parametrize("kind", ["pkl", "h5"])
def test_model_files_keep_the_dataset_yaml(saved_models, kind):
    train, paths = saved_models
    model = serial.load(paths[kind])
    assert model.dataset_yaml_src == train.model.dataset_yaml_src


def test_train_warns_when_the_dataset_has_no_yaml(saved_models, caplog):
    from pylearn_vae.datasets import DenseDesignMatrix
    from pylearn_vae.train import Train

    train, _ = saved_models
    model = serial.load(saved_models[1]["pkl"])
    model.dataset_yaml_src = None
    data = DenseDesignMatrix(X=numpy.zeros((3, 784), dtype="float32"))
    with caplog.at_level(logging.WARNING, logger="pylearn_vae.train"):
        Train(dataset=data, model=model, algorithm=train.algorithm)
    assert model.dataset_yaml_src is None
    assert "not built from YAML" in caplog.text


@pytest.mark.compiles
def test_show_samples_snippet_writes_a_png(saved_models, data_root, monkeypatch, caplog):
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(data_root))
    monkeypatch.delenv("PYLEARN2_VIEWER_COMMAND", raising=False)
    model = serial.load(saved_models[1]["pkl"])
    with caplog.at_level(logging.WARNING, logger="pylearn_vae.gui.patch_viewer"):
        show_samples(model)
    written = [r.args[-1] for r in caplog.records if "wrote" in r.getMessage()]
    assert len(written) == 1
    # 10 x 10 patches of 28 x 28 with one pixel of padding around each
    assert read_png_size(written[0]) == (10 * 29 + 1, 10 * 29 + 1)
    written[0].unlink()


@pytest.mark.compiles
def test_print_nll_snippet(saved_models, data_root, monkeypatch, float64_graphs):
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(data_root))
    model = serial.load(saved_models[1]["h5"])
    nll = print_nll(model)
    # An untrained model puts probability about 1/2 on every pixel: NLL ~ 784 log 2.
    assert 784 * numpy.log(2) * 0.9 < nll < 784 * numpy.log(2) * 1.1
