"""Convolution and pooling graphs against direct SciPy/NumPy computations, on every backend."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import signal

from pylearn_vae.expr.conv import (
    conv2d,
    conv_output_shape,
    max_pool,
    mean_pool,
    pool_output_shape,
)
from pylearn_vae.utils.compile import function

IMAGE, KERNEL = (7, 6), (3, 2)
CASES = [("valid", (2, 3)), ("full", (1, 1))]


def reference_conv(x, W, border_mode, stride):
    """Sum over input channels of SciPy's 2-d convolutions, subsampled."""
    out = np.array(
        [
            [
                sum(signal.convolve2d(img[i], W[o, i], mode=border_mode) for i in range(x.shape[1]))
                for o in range(W.shape[0])
            ]
            for img in x
        ]
    )
    return out[:, :, :: stride[0], :: stride[1]]


def reference_pool(x, pool, stride, reduce):
    rows, cols = pool_output_shape(x.shape[2:], pool, stride)
    out = np.empty(x.shape[:2] + (rows, cols))
    for r in range(rows):
        for c in range(cols):
            window = x[
                :,
                :,
                r * stride[0] : r * stride[0] + pool[0],
                c * stride[1] : c * stride[1] + pool[1],
            ]
            out[:, :, r, c] = reduce(window, axis=(2, 3))
    return out


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return (
        rng.normal(size=(2, 3, *IMAGE)).astype("float32"),
        rng.normal(size=(4, 3, *KERNEL)).astype("float32"),
    )


def graph():
    # Static shapes: JAX traces only graphs whose shapes are known.
    x = pt.tensor4("x", dtype="float32", shape=(2, 3, *IMAGE))
    W = pt.tensor4("W", dtype="float32", shape=(4, 3, *KERNEL))
    outputs = [conv2d(x, W, IMAGE, KERNEL, stride, mode) for mode, stride in CASES]
    outputs += [max_pool(x, (2, 2), (2, 2), IMAGE), mean_pool(x, (3, 3), (2, 2), IMAGE)]
    return [x, W], outputs


@pytest.fixture(scope="module", params=["NUMBA", "CVM", "JAX"])
def results(request, data):
    inputs, outputs = graph()
    return function(inputs, outputs, mode=request.param)(*data)


def test_output_shapes():
    assert conv_output_shape(IMAGE, KERNEL, (2, 3)) == (3, 2)
    assert conv_output_shape(IMAGE, KERNEL, (1, 1), "full") == (9, 7)
    assert pool_output_shape(IMAGE, (2, 2), (2, 2)) == (4, 3)
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_shape((2, 2), (3, 3))
    with pytest.raises(ValueError, match="border_mode"):
        conv_output_shape((4, 4), (3, 3), border_mode="same")
    with pytest.raises(ValueError, match="do not fit"):
        pool_output_shape((4, 4), (5, 1), (1, 1))


def test_convolution_matches_scipy(results, data):
    x, W = data
    for (mode, stride), out in zip(CASES, results):
        expected = reference_conv(x.astype("float64"), W.astype("float64"), mode, stride)
        assert out.shape == expected.shape
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_pooling_matches_numpy_and_covers_the_edges(results, data):
    x, _ = data
    max22, mean33 = results[len(CASES) : len(CASES) + 2]
    np.testing.assert_array_equal(max22, reference_pool(x, (2, 2), (2, 2), np.max))
    np.testing.assert_allclose(
        mean33, reference_pool(x, (3, 3), (2, 2), np.mean), rtol=1e-5, atol=1e-6
    )
    assert max22.shape == (2, 3, 4, 3)  # the last row pools a single image row
    assert mean33.shape == (2, 3, 3, 3)  # the last column averages 2 of 3 columns
    for out in (max22, mean33):
        assert out.dtype == np.float32


def test_gradients_match_finite_differences(data):
    x, W = (pt.tensor4(name, dtype="float32") for name in "xW")
    loss = (
        (conv2d(x, W, IMAGE, KERNEL, (2, 1), "valid") ** 2).sum()
        + max_pool(x, (2, 2), (2, 2), IMAGE).sum()
        + (mean_pool(x, (2, 2), (2, 2), IMAGE) ** 2).sum()
    )
    # The C backend: a cold Numba compile of this gradient graph takes minutes.
    f = function([x, W], [loss, *pytensor.grad(loss, [x, W])], mode="CVM")
    _, gx, gW = f(*data)
    rng = np.random.default_rng(1)
    h = 1e-2
    for which, grad in ((0, gx), (1, gW)):
        direction = rng.normal(size=data[which].shape).astype("float32")
        plus, minus = list(data), list(data)
        plus[which] = data[which] + h * direction
        minus[which] = data[which] - h * direction
        numeric = (f(*plus)[0] - f(*minus)[0]) / (2 * h)
        np.testing.assert_allclose((grad * direction).sum(), numeric, rtol=2e-2)
