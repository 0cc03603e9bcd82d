"""Evaluating a trained model: IS estimates, samples, reconstructions, monitor plots."""

import json
import struct
import zlib

import numpy as np
import pytensor.tensor as pt
import pytest

from pylearn_vae import persistence
from pylearn_vae.cli import evaluate, plot_monitor, show_samples
from pylearn_vae.compile import function
from pylearn_vae.evaluation import ImportanceSampler, combine_log_means, mean_and_stderr
from pylearn_vae.utils import floatX

pytestmark = pytest.mark.slow


@pytest.fixture
def data_env(mnist_root, monkeypatch):
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(mnist_root))


@pytest.fixture(scope="module")
def valid_x(mnist_root):
    return np.load(mnist_root / "binarized_mnist" / "binarized_mnist_valid.npy")[:300].astype(
        "float32"
    )


@pytest.mark.compiles
def test_evaluate_gives_the_compiled_functions_contiguous_batches(
    small_mnist_model, valid_x, monkeypatch
):
    """A strided subsample (the CLI's data[::stride]) made Numba compile an
    'A'-layout version of each function, whose matrix products copied the batch
    (with a NumbaPerformanceWarning on a cold cache)."""
    sampler = ImportanceSampler(persistence.load(small_mnist_model), 1, 1, seed=3)
    seen = []

    def record(X, batch_index):
        seen.append((batch_index, X.flags.c_contiguous))
        return np.zeros(len(X)), np.zeros(len(X))

    monkeypatch.setattr(sampler, "estimates", record)
    strided = valid_x[::3]
    assert not strided.flags.c_contiguous
    result = sampler.evaluate(strided, batch_size=40, progress=False)
    assert result["num_examples"] == len(strided)
    assert seen == [(0, True), (1, True), (2, True)]


@pytest.mark.compiles
@pytest.mark.subprocess
def test_two_worker_processes_give_exactly_the_numbers_of_one(small_mnist_model, valid_x):
    """Each batch's noise comes from (seed, batch index), so the split over
    processes does not change the numbers (beyond float32 rounding: the
    workers' BLAS runs on fewer threads, which sums in another order)."""
    sampler = ImportanceSampler(persistence.load(small_mnist_model), 30, 8, seed=4)
    x = valid_x[:90]
    alone = sampler.evaluate(x, batch_size=20, progress=False, workers=1)
    shared = sampler.evaluate(x, batch_size=20, progress=False, workers=2)
    for key in ("nll", "nll_stderr", "negative_elbo", "negative_elbo_stderr"):
        assert alone[key] == pytest.approx(shared[key], rel=1e-6), key
    assert shared["workers"] == 2
    by_hand = [
        sampler.estimates(np.ascontiguousarray(x[lo : lo + 20]), i)[0]
        for i, lo in enumerate(range(0, 90, 20))
    ]
    assert -np.concatenate(by_hand).mean() == pytest.approx(alone["nll"], rel=1e-12)
    other = ImportanceSampler(sampler.model, 30, 8, seed=5).evaluate(x, 20, progress=False)
    assert other["nll"] != alone["nll"]


@pytest.mark.compiles
def test_the_elbo_is_the_mean_log_weight_and_agrees_with_the_criterion(small_mnist_model, valid_x):
    model = persistence.load(small_mnist_model)
    sampler = ImportanceSampler(model, 400, 100, seed=5)
    log_likelihood, elbo = sampler.estimates(valid_x[:100], 0)
    assert (elbo < log_likelihood).all()  # Jensen, per example
    criterion = np.mean([sampler.elbo(valid_x[:100]).mean() for _ in range(20)])
    assert elbo.mean() == pytest.approx(criterion, abs=0.5)


@pytest.mark.compiles
@pytest.mark.subprocess
def test_a_killed_worker_is_an_error_not_a_hang(small_mnist_model, valid_x, monkeypatch):
    from concurrent.futures.process import BrokenProcessPool

    import pylearn_vae.evaluation as evaluation

    sampler = ImportanceSampler(persistence.load(small_mnist_model), 5, 5, seed=6)
    monkeypatch.setattr(evaluation, "_worker_batch", _die)
    with pytest.raises(BrokenProcessPool):
        sampler.evaluate(valid_x[:40], batch_size=20, progress=False, workers=2)


def _die(task):
    import os

    os._exit(3)


def read_png(path):
    """Decode the 8-bit grayscale PNGs written by pylearn_vae.utils.image."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", None, None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    rows = zlib.decompress(idat)
    return np.frombuffer(rows, np.uint8).reshape(height, width + 1)[:, 1:]


@pytest.mark.compiles
def test_is_estimate_bounds_elbo_and_stabilises_with_k(small_mnist_model, valid_x):
    model = persistence.load(small_mnist_model)
    estimates = {
        k: ImportanceSampler(model, k, sample_chunk=50, seed=1).log_likelihood(valid_x).mean()
        for k in (1, 10, 100, 300)
    }
    elbo = ImportanceSampler(model, 1, 1, seed=2).elbo(valid_x).mean()
    assert estimates[1] == pytest.approx(elbo, abs=1.0)  # K=1 is an ELBO with a Monte Carlo KL
    assert estimates[10] > elbo + 1.0
    assert estimates[1] < estimates[10] < estimates[100] < estimates[300] + 0.3
    assert abs(estimates[300] - estimates[100]) < 0.25 * abs(estimates[100] - estimates[1])


@pytest.mark.compiles
def test_chunked_equals_unchunked_with_the_same_noise(small_mnist_model, valid_x):
    model = persistence.load(small_mnist_model)
    eps = pt.tensor3(dtype=floatX())
    model.posterior.sample_from_epsilon = lambda shape: eps
    X = model.get_input_space().make_theano_batch()
    whole = function([X, eps], model.log_likelihood_approximation(X, 6))
    part = function([X, eps], model.log_likelihood_approximation(X, 2))
    x = valid_x[:40]
    noise = np.random.default_rng(0).standard_normal((6, 40, model.nhid)).astype("float32")
    chunks = [part(x, noise[i : i + 2]) for i in (0, 2, 4)]
    np.testing.assert_allclose(
        combine_log_means(chunks, [2, 2, 2]), whole(x, noise), rtol=1e-5, atol=1e-3
    )


def test_standard_error():
    values = np.random.default_rng(0).normal(5.0, 2.0, size=1000)
    mean, se = mean_and_stderr(values)
    assert mean == pytest.approx(values.mean())
    assert se == pytest.approx(np.sqrt(((values - values.mean()) ** 2).sum() / 999) / np.sqrt(1000))


@pytest.mark.compiles
@pytest.mark.subprocess
def test_evaluate_script_is_deterministic_and_writes_json(
    small_mnist_model, data_env, tmp_path, capsys
):
    args = [
        str(small_mnist_model),
        "--num-samples",
        "20",
        "--max-examples",
        "200",
        "--batch-size",
        "50",
    ]
    assert evaluate.main([*args, "--json", str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    assert "test NLL (importance sampling, K=20):" in out and "200 examples, 20 samples each" in out
    assert evaluate.main([*args, "--json", str(tmp_path / "b.json")]) == 0
    assert evaluate.main([*args, "--seed", "9", "--json", str(tmp_path / "c.json")]) == 0
    a, b, c = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "abc")
    assert a["nll"] == b["nll"] and a["nll"] != c["nll"]
    assert a["nll"] < a["negative_elbo"]
    assert a["num_examples"] == 200 and a["num_samples"] == 20 and a["nll_stderr"] > 0


@pytest.mark.compiles
def test_show_samples_writes_grids(small_mnist_model, data_env, tmp_path):
    out = tmp_path / "s.png"
    assert (
        show_samples.main(
            [
                str(small_mnist_model),
                "--rows",
                "3",
                "--cols",
                "4",
                "--out",
                str(out),
                "--scale",
                "1",
            ]
        )
        == 0
    )
    pixels = read_png(out)
    assert pixels.shape == (3 * 29 + 1, 4 * 29 + 1) and pixels.min() < pixels.max()
    out2 = tmp_path / "m.png"
    assert (
        show_samples.main(
            [
                str(small_mnist_model),
                "--rows",
                "2",
                "--cols",
                "2",
                "--show-means",
                "--out",
                str(out2),
            ]
        )
        == 0
    )
    assert read_png(out2).shape == (2 * (2 * 29 + 1), 2 * (4 * 29 + 1))
    out3 = tmp_path / "r.png"
    assert (
        show_samples.main(
            [
                str(small_mnist_model),
                "--rows",
                "2",
                "--cols",
                "3",
                "--reconstruct",
                "--out",
                str(out3),
                "--scale",
                "1",
            ]
        )
        == 0
    )
    assert read_png(out3).shape == (2 * 29 + 1, 6 * 29 + 1)


@pytest.mark.compiles
def test_monitor_scripts(small_mnist_model, capsys):
    assert plot_monitor.main([str(small_mnist_model)]) == 0
    assert "  valid_objective" in capsys.readouterr().out
    assert plot_monitor.print_main([str(small_mnist_model)]) == 0
    assert "epochs seen: 3" in capsys.readouterr().out


@pytest.mark.viz
@pytest.mark.compiles
@pytest.mark.subprocess  # (matplotlib's first import on a machine runs fc-list for its font cache)
def test_plot_monitor_draws_the_channels(small_mnist_model, tmp_path):
    import matplotlib.image

    out = tmp_path / "c.png"
    assert (
        plot_monitor.main(
            [
                str(small_mnist_model),
                "--channels",
                "valid_objective,valid_kl_divergence_term",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (500, 800) and image.min() < image.max()


@pytest.mark.compiles
def test_bad_arguments_give_clear_errors(small_mnist_model, tmp_path, capsys):
    assert plot_monitor.main([str(small_mnist_model), "--channels", "nope"]) == 1
    assert "unknown channel(s) nope; available:" in capsys.readouterr().err
    assert show_samples.main([str(tmp_path / "missing.pkl")]) == 1
    assert "does not exist" in capsys.readouterr().err
    not_model = tmp_path / "list.pkl"
    persistence.save(not_model, [1, 2])
    assert evaluate.main([str(not_model)]) == 1
    assert "holds a list, not a pylearn_vae VAE model" in capsys.readouterr().err
    garbage = tmp_path / "g.pkl"
    garbage.write_bytes(b"not a pickle")
    assert plot_monitor.print_main([str(garbage)]) == 1
    assert "is not a valid pylearn_vae model file" in capsys.readouterr().err


def test_samples_per_call_keep_the_widest_activation_bounded():
    # The seed model's widest activation is its 784-pixel output: 200
    # samples of batches of 100 per call, as before the bound was by size.
    from pylearn_vae.evaluation import ACTIVATION_FLOATS_PER_CALL, samples_per_call
    from pylearn_vae.models.mlp import MLP, Deconv, Linear, SpaceConverter
    from pylearn_vae.space import Conv2DSpace, VectorSpace
    from tests.helpers.models import make_vae

    seed_like = make_vae(nvis=784, nhid=32, hidden=200)
    assert samples_per_call(seed_like, 5000, 100) == 200
    assert samples_per_call(seed_like, 30, 100) == 30  # never more than K
    # A decoder whose widest output is 14x14x16 = 3,136 floats per example.
    decoder = MLP(
        layers=[
            Linear(dim=1568, layer_name="dense", irange=0.01),
            SpaceConverter("to_maps", Conv2DSpace(shape=[7, 7], num_channels=32)),
            Deconv(
                num_channels=16,
                kernel_shape=[4, 4],
                output_stride=[2, 2],
                pad_out=1,
                layer_name="up",
                irange=0.01,
            ),
            SpaceConverter("flat", VectorSpace(dim=3136)),
        ]
    )
    conv_like = make_vae(nvis=784, nhid=32, hidden=200)
    conv_like.conditional.mlp = decoder
    decoder.set_input_space(VectorSpace(dim=32))
    chunk = samples_per_call(conv_like, 5000, 100)
    assert chunk == ACTIVATION_FLOATS_PER_CALL // 3136 // 100 == 50
    assert samples_per_call(conv_like, 5000, 100_000) == 1  # at least one sample
