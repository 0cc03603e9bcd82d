r"""Float32 scalar operations with branch-free code, for the Numba and C backends.

PyTensor's ``exp``, ``log``, ``log1p``, ``sqrt``, ``softplus`` and
``sigmoid`` call libm once per element (the C backend's float32 ``softplus``
even goes through double precision), which keeps elementwise loops scalar
and slow. :func:`use_vectorised_math` is a graph rewrite that swaps them,
in float32 graphs, for the subclasses below. Each inherits everything
(gradient, JAX code, printing) from PyTensor's own operation except its
code: under Numba the kernels of :mod:`pylearn_vae.speedups.vecmath` (registered
in :mod:`pylearn_vae.speedups.numba_math`), under the C backend the same
algorithm in C (:data:`C_SUPPORT_CODE`), written with the same float32
constants. float64 graphs are left alone.

This module imports neither Numba nor PyTensor's Numba backend, so the C
backend gets the rewrite where the Numba speed-ups are turned off.
"""

from __future__ import annotations

import numpy as np
from pytensor.graph.rewriting.basic import in2out, node_rewriter
from pytensor.scalar import basic as ps
from pytensor.scalar import math as psm
from pytensor.tensor.elemwise import Elemwise

from pylearn_vae.speedups import internals
from pylearn_vae.speedups import vecmath_constants as constants
from pylearn_vae.speedups.source import source_version

__all__ = [
    "VecExp",
    "VecLog",
    "VecLog1p",
    "VecSqrt",
    "VecSoftplus",
    "VecSigmoid",
    "VECTORISED",
    "use_vectorised_math",
    "C_SUPPORT_CODE",
    "vectorise_fused_math",
]

#: In PyTensor's C cache key: changes with the code that generates the C code.
C_VERSION = source_version()


def _c_float(value) -> str:
    """A C float literal holding exactly the float32 ``value``."""
    return f"{float(np.float32(value)).hex()}f"


def _support_code() -> str:
    """C source of the float32 functions, each constant of :mod:`constants` written
    as an exact hexadecimal literal."""
    c = {
        name: _c_float(value)
        for name, value in vars(constants).items()
        if isinstance(value, np.float32)
    }
    return f"""
#ifndef PYLEARN_VAE_VECMATH_C
#define PYLEARN_VAE_VECMATH_C
#include <math.h>
#include <stdint.h>
#include <string.h>
static inline float pvae_from_bits(int32_t i) {{ float f; memcpy(&f, &i, 4); return f; }}
static inline int32_t pvae_to_bits(float f) {{ int32_t i; memcpy(&i, &f, 4); return i; }}
/* max/min written as selections (max(NaN, a) is a, as fmaxf): unlike fmaxf
   and fminf, the compiler turns them into SIMD instructions. */
static inline float pvae_max(float x, float a) {{ return x > a ? x : a; }}
static inline float pvae_min(float x, float a) {{ return x < a ? x : a; }}
static inline float pvae_pow2(float n) {{ return pvae_from_bits(((int32_t)n + 127) << 23); }}
static inline float pvae_exp32(float x) {{
    float xc = pvae_min(pvae_max(x, {c["EXP_LO"]}), {c["EXP_HI"]});
    float n = floorf(xc * {c["LOG2E"]} + {c["HALF"]});
    float r = (xc - n * {c["LN2_HI"]}) - n * {c["LN2_LO"]};
    float p = {c["E0"]} + r * ({c["E1"]} + r * ({c["E2"]} + r * ({c["E3"]} + r * ({c["E4"]}
              + r * ({c["E5"]} + r * {c["E6"]})))));
    float n1 = floorf(n * {c["HALF"]});
    float out = p * pvae_pow2(n1) * pvae_pow2(n - n1);
    return x != x ? x : out;
}}
static inline float pvae_log_series(float t) {{
    float u = t * t;
    return {c["TWO"]} * t * ({c["A0"]} + u * ({c["A1"]} + u * ({c["A2"]} + u * ({c["A3"]}
           + u * {c["A4"]}))));
}}
static inline float pvae_log32(float x) {{
    int tiny = x < {c["MIN_NORMAL"]};
    float xs = tiny ? x * {c["TWO23"]} : x;
    int32_t bits = pvae_to_bits(xs);
    float k = (float)(((bits >> 23) & 0xFF) - 127) - (tiny ? {c["TWENTY3"]} : {c["ZERO"]});
    float m = pvae_from_bits((bits & 0x7FFFFF) | 0x3F800000);
    int big = m > {c["SQRT2"]};
    m = big ? m * {c["HALF"]} : m;
    float kf = big ? k + {c["ONE"]} : k;
    float out = kf * {c["LN2_HI"]} + (kf * {c["LN2_LO"]}
                + pvae_log_series((m - {c["ONE"]}) / (m + {c["ONE"]})));
    out = x == {c["ZERO"]} ? -INFINITY : out;
    out = x < {c["ZERO"]} ? NAN : out;
    out = x == INFINITY ? x : out;
    return x != x ? x : out;
}}
static inline float pvae_log1p32(float x) {{
    float series = pvae_log_series(x / ({c["TWO"]} + x));
    float full = pvae_log32({c["ONE"]} + x);
    float out = x <= {c["ONE"]} ? series : full;
    return x >= -{c["HALF"]} ? out : full;
}}
static inline float pvae_softplus32(float x) {{
    float e = pvae_exp32(-fabsf(x));
    return pvae_max(x, {c["ZERO"]}) + pvae_log_series(e / ({c["TWO"]} + e));
}}
static inline float pvae_sigmoid32(float x) {{
    float e = pvae_exp32(-fabsf(x));
    float r = {c["ONE"]} / ({c["ONE"]} + e);
    return x >= {c["ZERO"]} ? r : e * r;
}}
#endif
"""


#: C definitions of the float32 functions (``pvae_exp32`` ...), shared by every op.
C_SUPPORT_CODE = _support_code()


class _Vectorised:
    """Marker base: a PyTensor scalar op with branch-free float32 code."""

    #: Name of the C function for float32 (``sqrtf`` is already branch-free).
    c_function = ""

    def c_support_code(self, **kwargs):
        return C_SUPPORT_CODE

    def c_code(self, node, name, inputs, outputs, sub):
        if all(v.type.dtype == "float32" for v in (*node.inputs, *node.outputs)):
            return f"{outputs[0]} = {self.c_function}({inputs[0]});"
        return super().c_code(node, name, inputs, outputs, sub)

    def c_code_cache_version(self):
        version = super().c_code_cache_version()
        return ("pylearn_vae", C_VERSION, *version) if version else version


class VecExp(_Vectorised, ps.Exp):
    c_function = "pvae_exp32"


class VecLog(_Vectorised, ps.Log):
    c_function = "pvae_log32"


class VecLog1p(_Vectorised, ps.Log1p):
    c_function = "pvae_log1p32"


class VecSqrt(_Vectorised, ps.Sqrt):
    c_function = "sqrtf"


class VecSoftplus(_Vectorised, psm.Softplus):
    c_function = "pvae_softplus32"


class VecSigmoid(_Vectorised, psm.Sigmoid):
    c_function = "pvae_sigmoid32"


#: PyTensor scalar op class -> its vectorised replacement.
VECTORISED = {
    ps.Exp: VecExp,
    ps.Log: VecLog,
    ps.Log1p: VecLog1p,
    ps.Sqrt: VecSqrt,
    psm.Softplus: VecSoftplus,
    psm.Sigmoid: VecSigmoid,
}


@node_rewriter([Elemwise])
def _vectorise_float32_math(fgraph, node):
    if not internals.rewrite_positions_hold():  # placed among PyTensor's passes by position
        return None
    scalar_op = node.op.scalar_op
    replacement = VECTORISED.get(type(scalar_op))
    if replacement is None:
        return None
    if any(v.type.dtype != "float32" for v in (*node.inputs, *node.outputs)):
        return None
    new_op = Elemwise(replacement(scalar_op.output_types_preference, name=scalar_op.name))
    return [new_op(*node.inputs)]


def use_vectorised_math():
    """The graph rewrite that swaps in the vectorisable operations, and its position.

    Position 48.9 is after PyTensor's canonicalize/stabilize/specialize
    passes (which recognise ``log1p(exp(x))`` as softplus and so on) and
    before elementwise fusion (49), so the fused loops contain the
    vectorisable operations.
    """
    return in2out(_vectorise_float32_math, name="pylearn_vae_vectorised_math"), 48.9


def _vectorised_scalar_graph(composite: ps.Composite) -> ps.Composite | None:
    """``composite`` rebuilt with the vectorised operations, or None if none applies."""
    inputs = [i.type() for i in composite.inputs]
    mapping = dict(zip(composite.inputs, inputs, strict=True))
    changed = False
    for node in composite.fgraph.toposort():
        op = node.op
        replacement = VECTORISED.get(type(op))
        dtypes = {v.type.dtype for v in (*node.inputs, *node.outputs)}
        if replacement is not None and dtypes == {"float32"}:
            op = replacement(op.output_types_preference, name=op.name)
            changed = True
        new = op.make_node(*[mapping.get(v, v) for v in node.inputs])
        mapping.update(zip(node.outputs, new.outputs, strict=True))
    if not changed:
        return None
    return ps.Composite(inputs, [mapping.get(o, o) for o in composite.outputs])


@node_rewriter([Elemwise])
def _vectorise_fused_math(fgraph, node):
    if not internals.rewrite_positions_hold():
        return None
    scalar_op = node.op.scalar_op
    if type(scalar_op) is not ps.Composite:
        return None
    composite = _vectorised_scalar_graph(scalar_op)
    if composite is None:
        return None
    new_op = Elemwise(composite, inplace_pattern=node.op.inplace_pattern)
    return new_op(*node.inputs, return_list=True)


def vectorise_fused_math():
    """The graph rewrite that swaps in the vectorisable operations inside loops
    PyTensor fused before :func:`use_vectorised_math` ran, and its position:
    after elementwise fusion (49), before in-place rewrites (49.5). (Under
    Numba the fused loops' generated code does this.)"""
    return in2out(_vectorise_fused_math, name="pylearn_vae_vectorised_fused_math"), 49.1
