"""NumPy references (in float64) that kernels and layers are compared against."""

import numpy as np

#: float32 values at the edges of the kernels' ranges: zeros, infinities, NaN,
#: subnormals, the overflow and underflow thresholds of exp.
SPECIAL = np.array(
    [
        0.0,
        -0.0,
        np.inf,
        -np.inf,
        np.nan,
        1e-45,
        -1e-45,
        1e-38,
        1e-30,
        88.72,
        88.73,
        -87.3,
        -103.9,
        -104.1,
        -1.0,
        -0.5,
        0.5,
        1.0,
        2.0,
        1e-8,
        -1e-8,
        100.0,
        -100.0,
        3e38,
    ],
    dtype=np.float32,
)


def float32_inputs(domain: str) -> np.ndarray:
    """About 35,000 float32 inputs over many magnitudes, and :data:`SPECIAL`, for a
    kernel whose domain is ``"any"``, ``"positive"`` or ``"above_minus_one"``."""
    rng = np.random.default_rng(0)
    wide = (rng.standard_normal(20000) * 10.0 ** rng.integers(-6, 3, 20000)).astype(np.float32)
    if domain == "positive":
        return np.concatenate([np.abs(wide), rng.uniform(0, 5, 5000).astype(np.float32), SPECIAL])
    if domain == "above_minus_one":
        return np.concatenate([rng.uniform(-1, 3, 10000).astype(np.float32), np.abs(wide), SPECIAL])
    return np.concatenate([wide, rng.uniform(-90, 90, 10000).astype(np.float32), SPECIAL])


def softplus64(x):
    """log(1 + exp(x)), without overflow."""
    return np.logaddexp(0.0, x)


def sigmoid64(x):
    """1 / (1 + exp(-x)), without overflow."""
    with np.errstate(over="ignore"):
        return np.where(x >= 0, 1.0 / (1.0 + np.exp(-x)), np.exp(x) / (1.0 + np.exp(x)))


def reference_transpose(x, W, out_shape, stride, pad):
    """Every input pixel adds its value times the kernel to a block of the
    output, with NumPy loops; then the padding is cut off."""
    b, _, rows, cols = x.shape
    (kr, kc), (sr, sc), (pr, pc) = W.shape[2:], stride, pad
    full = np.zeros((b, W.shape[1], out_shape[0] + 2 * pr + kr, out_shape[1] + 2 * pc + kc))
    for n in range(b):
        for i in range(x.shape[1]):
            for r in range(rows):
                for c in range(cols):
                    full[n, :, r * sr : r * sr + kr, c * sc : c * sc + kc] += x[n, i, r, c] * W[i]
    return full[:, :, pr : pr + out_shape[0], pc : pc + out_shape[1]]


def check_gradients_by_finite_differences(params, analytic, cost, h=1e-6) -> int:
    """Compare each gradient in ``analytic`` with central differences of
    ``cost()`` (a float64 function of the parameters' current values) over
    every entry of ``params`` (shared variables, restored after); returns the
    number of entries checked."""
    checked = 0
    for param, grad in zip(params, analytic, strict=True):
        value = param.get_value()
        numeric = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            for sign in (1, -1):
                bumped = value.copy()
                bumped[idx] += sign * h
                param.set_value(bumped)
                numeric[idx] += sign * cost() / (2 * h)
            checked += 1
        param.set_value(value)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7, err_msg=param.name)
    return checked
