"""Convolution and pooling graphs against direct SciPy/NumPy computations, on every backend."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import signal

from pylearn_vae.compile import function
from pylearn_vae.expr.conv import (
    border_padding,
    conv2d,
    conv2d_transpose,
    conv_output_shape,
    max_pool,
    mean_pool,
    pool_output_shape,
)
from tests.helpers.references import reference_transpose

IMAGE, KERNEL = (7, 6), (3, 2)
CASES = [("valid", (2, 3)), ("full", (1, 1)), ("half", (1, 2)), ((2, 1), (2, 2))]
# Transposed convolutions: (input rows/cols, output rows/cols, stride, padding);
# the kernels are KERNEL-sized, the input has 4 channels and the output 3.
TRANSPOSED = [((3, 3), (7, 6), (2, 2), (0, 0)), ((4, 5), (7, 9), (2, 2), (1, 1))]


def reference_conv(x, W, border_mode, stride):
    """Sum over input channels of SciPy's 2-d convolutions of the zero-padded
    images, subsampled."""
    pr, pc = border_padding(border_mode, W.shape[2:])
    x = np.pad(x, ((0, 0), (0, 0), (pr, pr), (pc, pc)))
    out = np.array(
        [
            [
                sum(signal.convolve2d(img[i], W[o, i], mode="valid") for i in range(x.shape[1]))
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


def transposed_inputs():
    rng = np.random.default_rng(3)
    return [rng.normal(size=(2, 4, *size)).astype("float32") for size, *_ in TRANSPOSED]


def graph():
    # Static shapes: JAX traces only graphs whose shapes are known.
    x = pt.tensor4("x", dtype="float32", shape=(2, 3, *IMAGE))
    W = pt.tensor4("W", dtype="float32", shape=(4, 3, *KERNEL))
    ys = [
        pt.tensor4(f"y{i}", dtype="float32", shape=(2, 4, *c[0])) for i, c in enumerate(TRANSPOSED)
    ]
    outputs = [conv2d(x, W, IMAGE, KERNEL, stride, mode) for mode, stride in CASES]
    outputs += [max_pool(x, (2, 2), (2, 2), IMAGE), mean_pool(x, (3, 3), (2, 2), IMAGE)]
    outputs += [
        conv2d_transpose(y, W, out, KERNEL, stride, pad)
        for y, (_, out, stride, pad) in zip(ys, TRANSPOSED)
    ]
    return [x, W, *ys], outputs


@pytest.fixture(scope="module", params=["NUMBA", "CVM", pytest.param("JAX", marks=pytest.mark.jax)])
def results(request, data):
    inputs, outputs = graph()
    return function(inputs, outputs, mode=request.param)(*data, *transposed_inputs())


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


@pytest.mark.compiles
def test_convolution_matches_scipy(results, data):
    x, W = data
    for (mode, stride), out in zip(CASES, results):
        expected = reference_conv(x.astype("float64"), W.astype("float64"), mode, stride)
        assert out.shape == expected.shape
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.compiles
def test_transposed_convolution_matches_numpy_loops(results, data):
    _, W = data
    for y, out, (_, shape, stride, pad) in zip(
        transposed_inputs(), results[-len(TRANSPOSED) :], TRANSPOSED
    ):
        expected = reference_transpose(y.astype("float64"), W.astype("float64"), shape, stride, pad)
        assert out.shape == expected.shape == (2, 3, *shape)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_border_modes():
    assert border_padding("valid", (3, 2)) == (0, 0)
    assert border_padding("full", (3, 2)) == (2, 1)
    assert border_padding("half", (3, 2)) == (1, 1)
    assert border_padding(2, (3, 2)) == (2, 2)
    assert border_padding([0, 1], (3, 2)) == (0, 1)
    for bad in ("same", -1, (1, 2, 3), (1.5, 1), True):
        with pytest.raises(ValueError, match="border_mode must be"):
            border_padding(bad, (3, 3))


@pytest.mark.compiles
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


@pytest.mark.parametrize("mode", ["NUMBA", "CVM", pytest.param("JAX", marks=pytest.mark.jax)])
@pytest.mark.compiles
def test_gradients_match_finite_differences(data, mode):
    # Static shapes: JAX traces only graphs whose shapes are known.
    (in_shape, out_shape, stride, pad) = TRANSPOSED[1]
    x = pt.tensor4("x", dtype="float32", shape=(2, 3, *IMAGE))
    W = pt.tensor4("W", dtype="float32", shape=(4, 3, *KERNEL))
    y = pt.tensor4("y", dtype="float32", shape=(2, 4, *in_shape))
    loss = (
        (conv2d(x, W, IMAGE, KERNEL, (2, 1), "valid") ** 2).sum()
        + (conv2d(x, W, IMAGE, KERNEL, (1, 2), (1, 2)) ** 2).sum()
        + max_pool(x, (2, 2), (2, 2), IMAGE).sum()
        + (mean_pool(x, (2, 2), (2, 2), IMAGE) ** 2).sum()
        + (conv2d_transpose(y, W, out_shape, KERNEL, stride, pad) ** 2).sum()
    )
    f = function([x, W, y], [loss, *pytensor.grad(loss, [x, W, y])], mode=mode)
    inputs = [*data, transposed_inputs()[1]]
    _, gx, gW, gy = f(*inputs)
    rng = np.random.default_rng(1)
    h = 1e-2
    for which, grad in ((0, gx), (1, gW), (2, gy)):
        direction = rng.normal(size=inputs[which].shape).astype("float32")
        plus, minus = list(inputs), list(inputs)
        plus[which] = inputs[which] + h * direction
        minus[which] = inputs[which] - h * direction
        numeric = (f(*plus)[0] - f(*minus)[0]) / (2 * h)
        np.testing.assert_allclose((grad * direction).sum(), numeric, rtol=2e-2)
