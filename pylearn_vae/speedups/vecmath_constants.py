"""The float32 constants of the branch-free math (shared by the Numba kernels of
:mod:`pylearn_vae.speedups.vecmath` and the C code of :mod:`pylearn_vae.speedups.vecops`).

Polynomial coefficients were fitted for this package by least squares on
Chebyshev nodes, in float64, then rounded to float32.
"""

import numpy as np

f = np.float32


# exp: e^r on [-ln2/2, ln2/2]
E0, E1, E2, E3 = (
    f(0.9999999999592241),
    f(1.000000037954624),
    f(0.5000000108398116),
    f(0.16666414469526122),
)
E4, E5, E6 = f(0.04166621647585572), f(0.00837521270321607), f(0.0013948700489127613)
# atanh(t)/t as a polynomial in u = t^2, u in [0, 1/9]
A0, A1, A2 = f(1.000000003938874), f(0.3333315796754161), f(0.20012426861690608)
A3, A4 = f(0.13980709417952897), f(0.14087328629125015)

LOG2E = f(1.4426950408889634)
LN2_HI = f(0.693359375)  # 9 significant bits: n * LN2_HI is exact for |n| < 2**15
LN2_LO = f(np.log(2.0) - 0.693359375)
EXP_LO, EXP_HI = f(-104.0), f(89.0)  # beyond these exp is 0 / inf in float32
HALF, ONE, TWO, ZERO = f(0.5), f(1.0), f(2.0), f(0.0)
MIN_NORMAL = f(np.finfo(np.float32).tiny)
TWO23 = f(2.0**23)
TWENTY3 = f(23.0)
SQRT2 = f(np.sqrt(2.0))
INF, NAN = f(np.inf), f(np.nan)
