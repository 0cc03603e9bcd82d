"""Elementwise loops that the C compiler can vectorise, for the C backend.

PyTensor's C code for an elementwise loop walks its arrays with strides
known only at run time, one element at a time. With the branch-free float32
functions of :mod:`pylearn_vae.speedups.vecops` inside, that still costs several
nanoseconds per element: the compiler cannot turn it into SIMD code.
:class:`VectorisedElemwise` puts a loop in front of PyTensor's whose
strides are known when the code is generated, taken from the arrays' static
broadcast patterns, and which runs whenever the arrays are contiguous:

- every input is either as large as the output or a single value: one flat
  loop over all elements (C or Fortran order alike);
- some inputs are rows broadcast along every axis but the last (a bias
  added to a batch): a loop over rows with a flat inner loop (C order).

The loops carry ``#pragma GCC ivdep``: an elementwise loop has no
dependence between iterations, even where an output overwrites its input
in place. Any other layout runs PyTensor's own loop.

PyTensor's hook for this (``ScalarOp.c_code_contiguous``) cannot be used:
``Elemwise`` then fails with an unbound local variable whenever a scalar
operation answers it (PyTensor 3.0.7 and 3.3.8). :class:`VectorisedElemwise`
changes the parts of C code ``Elemwise`` makes instead, through a private
method of ``Elemwise`` (:func:`pylearn_vae.speedups.internals.extend_elemwise_c_parts`):
where that method is gone or returns something else, PyTensor's code runs
unchanged. :func:`contiguous_loops` is the graph rewrite that puts
:class:`VectorisedElemwise` into C modes.
"""

from __future__ import annotations

import numpy as np
from pytensor.graph.basic import Apply
from pytensor.graph.rewriting.basic import in2out, node_rewriter
from pytensor.link.c.op import COp
from pytensor.scalar import basic as ps
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.math import Sum
from pytensor.tensor.type import TensorType

from pylearn_vae.speedups import internals
from pylearn_vae.speedups.source import source_version

__all__ = ["VectorisedElemwise", "ContiguousSum", "contiguous_loops", "MARKER"]

#: In PyTensor's C cache key: changes with the code that generates the C code.
C_VERSION = source_version()

#: A comment placed in the generated C code (tests look for it).
MARKER = "/* pylearn_vae: vectorised loop */"

FULL, SINGLE, ROW = "full", "single", "row"


def _kind(var, out_broadcastable) -> str | None:
    """How input ``var`` is laid out against an output of ``out_broadcastable``."""
    bc = var.type.broadcastable
    if all(bc):
        return SINGLE
    if bc == out_broadcastable:
        return FULL
    if not bc[-1] and all(bc[:-1]) and not out_broadcastable[-1]:
        return ROW
    return None


class _Loop:
    """The vectorisable loop of one elementwise node: a C function, and its call.

    The loop is a function of its own, marked hot and never inlined: inside
    the generated ``run()`` GCC judges it cold and optimises it for size,
    which turns vectorisation off.
    """

    #: Put where the scalar code would jump to the node's failure label; a
    #: loop whose scalar code can fail is left to PyTensor.
    NO_FAIL = "PYLEARN_VAE_NO_FAILURE_EXIT"

    def __init__(self, node, nodename, scalar_op):
        out_bc = node.outputs[0].type.broadcastable
        self.kinds = [_kind(v, out_bc) for v in node.inputs]
        self.ok = (
            node.outputs[0].type.ndim >= 1
            and not all(out_bc)
            and all(o.type.broadcastable == out_bc for o in node.outputs)
            and None not in self.kinds
        )
        if not self.ok:
            return
        self.function = f"pylearn_vae_loop_{nodename}"
        self.in_types = [v.type.dtype_specs()[1] for v in node.inputs]
        self.out_types = [v.type.dtype_specs()[1] for v in node.outputs]
        self.rows = ROW in self.kinds
        self.ndim = node.outputs[0].type.ndim
        scalar_node = Apply(
            scalar_op,
            [ps.get_scalar_type(v.type.dtype).make_variable() for v in node.inputs],
            [ps.get_scalar_type(v.type.dtype).make_variable() for v in node.outputs],
        )
        # The scalar code names its support code after "<node>_scalar_", as
        # PyTensor's own loop does.
        self.task = scalar_op.c_code(
            scalar_node,
            nodename + "_scalar_",
            [f"x{i}" for i in range(len(node.inputs))],
            [f"y{j}" for j in range(len(node.outputs))],
            {"fail": self.NO_FAIL},
        )
        self.ok = self.NO_FAIL not in self.task

    def _body(self) -> str:
        """One element ``k`` (column ``j``): read, compute, store."""
        where = {FULL: "k", ROW: "j"}
        reads = [
            f"const {t} x{i} = p{i}[{where[kind]}];"
            for i, (t, kind) in enumerate(zip(self.in_types, self.kinds))
            if kind != SINGLE
        ]
        decls = [f"{t} y{j};" for j, t in enumerate(self.out_types)]
        stores = [f"q{j}[k] = y{j};" for j in range(len(self.out_types))]
        return "\n".join([*reads, *decls, "{", self.task, "}", *stores])

    def support_code(self) -> str:
        params = [f"const {t}* p{i}" for i, t in enumerate(self.in_types)]
        params += [f"{t}* q{j}" for j, t in enumerate(self.out_types)]
        singles = [
            f"const {t} x{i} = p{i}[0];"
            for i, (t, kind) in enumerate(zip(self.in_types, self.kinds))
            if kind == SINGLE
        ]
        if self.rows:
            loop = f"""
    for (npy_intp start = 0; start < n; start += cols) {{
        #pragma GCC ivdep
        for (npy_intp j = 0; j < cols; ++j) {{
            const npy_intp k = start + j;
            {self._body()}
        }}
    }}"""
        else:
            loop = f"""
    #pragma GCC ivdep
    for (npy_intp k = 0; k < n; ++k) {{
        {self._body()}
    }}"""
        return f"""
{MARKER}
static void __attribute__((noinline, hot))
{self.function}(const npy_intp n, const npy_intp cols, {", ".join(params)}) {{
    {" ".join(singles)}
    {loop}
}}
"""

    def condition(self, inames, onames) -> str:
        """When the loop applies: full arrays all in C (or all in Fortran) order,
        and rows contiguous (a row may be a strided view, such as ``v[::2]``)."""
        full = [a for a, kind in zip(inames, self.kinds) if kind == FULL] + list(onames)
        c_order = " && ".join(f"PyArray_IS_C_CONTIGUOUS({a})" for a in full)
        if self.rows:
            rows = [a for a, kind in zip(inames, self.kinds) if kind == ROW]
            return " && ".join([c_order, *(f"PyArray_IS_C_CONTIGUOUS({a})" for a in rows)])
        f_order = " && ".join(f"PyArray_IS_F_CONTIGUOUS({a})" for a in full)
        return f"({c_order}) || ({f_order})"

    def call(self, inames, onames) -> str:
        z = onames[0]
        cols = f"PyArray_DIMS({z})[{self.ndim - 1}]" if self.rows else "0"
        args = [f"({t}*) PyArray_DATA({a})" for a, t in zip(inames, self.in_types)]
        args += [f"({t}*) PyArray_DATA({a})" for a, t in zip(onames, self.out_types)]
        return f"{self.function}(PyArray_SIZE({z}), {cols}, {', '.join(args)});"


class VectorisedElemwise(Elemwise):
    """``Elemwise`` whose C code runs a vectorisable loop on contiguous arrays."""

    def vectorised_parts(self, parts, node, nodename, inames, onames):
        """``parts`` (``Elemwise``'s C code of ``node``) with the vectorisable
        loop in front of PyTensor's, where it applies."""
        if not (isinstance(parts, tuple) and len(parts) == 5):
            return parts
        loop = _Loop(node, nodename, self.scalar_op)
        if not loop.ok:
            return parts
        decl, checks, alloc, generic, rest = parts
        fast = (
            f"if ({loop.condition(inames, onames)}) {{ {loop.call(inames, onames)} }}"
            f" else {{\n{generic}\n}}"
        )
        return decl, checks, alloc, fast, rest

    def c_support_code_apply(self, node, nodename):
        code = super().c_support_code_apply(node, nodename)
        loop = _Loop(node, nodename, self.scalar_op)
        return f"{code}\n{loop.support_code()}" if loop.ok else code

    def c_compile_args(self, **kwargs):
        # Neither flag changes a computed value: no code here reads errno or
        # enables floating-point traps. Without them GCC keeps the loops
        # scalar (comparisons might trap, sqrt might set errno).
        return [*super().c_compile_args(**kwargs), "-fno-trapping-math", "-fno-math-errno"]

    def c_code_cache_version_apply(self, node):
        version = super().c_code_cache_version_apply(node)
        return ("pylearn_vae_loops", C_VERSION, *version) if version else version


_SUM_SUPPORT = """
#ifndef PYLEARN_VAE_CONTIGUOUS_SUM
#define PYLEARN_VAE_CONTIGUOUS_SUM
#include <stdlib.h>
/* x is (outer, red, inner), C order; out[o, i] = sum over r of x[o, r, i],
   accumulated in double. Returns 0, or -1 when out of memory. */
#define PYLEARN_VAE_SUM(NAME, T)                                              \\
static int __attribute__((noinline, hot))                                    \\
NAME(const T* x, T* out, npy_intp outer, npy_intp red, npy_intp inner) {     \\
    if (inner == 1) {                                                         \\
        /* Eight running sums, so that the compiler can use SIMD lanes. */    \\
        for (npy_intp o = 0; o < outer; ++o) {                                \\
            const T* row = x + o * red;                                       \\
            double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};                           \\
            npy_intp r = 0;                                                   \\
            for (; r + 8 <= red; r += 8)                                      \\
                for (int l = 0; l < 8; ++l) a[l] += (double) row[r + l];      \\
            double tail = 0;                                                  \\
            for (; r < red; ++r) tail += (double) row[r];                     \\
            out[o] = (T) ((((a[0] + a[1]) + (a[2] + a[3]))                    \\
                           + ((a[4] + a[5]) + (a[6] + a[7]))) + tail);        \\
        }                                                                     \\
        return 0;                                                             \\
    }                                                                         \\
    double* acc = (double*) malloc(inner * sizeof(double));                   \\
    if (!acc) return -1;                                                      \\
    for (npy_intp o = 0; o < outer; ++o) {                                    \\
        for (npy_intp i = 0; i < inner; ++i) acc[i] = 0;                      \\
        for (npy_intp r = 0; r < red; ++r) {                                  \\
            const T* row = x + (o * red + r) * inner;                         \\
            for (npy_intp i = 0; i < inner; ++i) acc[i] += (double) row[i];   \\
        }                                                                     \\
        for (npy_intp i = 0; i < inner; ++i) out[o * inner + i] = (T) acc[i]; \\
    }                                                                         \\
    free(acc);                                                                \\
    return 0;                                                                 \\
}
PYLEARN_VAE_SUM(pylearn_vae_sum_float32, npy_float32)
PYLEARN_VAE_SUM(pylearn_vae_sum_float64, npy_float64)
#endif
"""


class ContiguousSum(COp):
    """Sum over consecutive ``axes`` of a float tensor, accumulated in float64.

    PyTensor's C reduction walks the input with run-time strides and sums
    float32 into a float64 array that it then copies into the output. This
    one reads the input as one contiguous block (copying it first if it is
    not contiguous), keeps eight running sums for a reduction along the last
    axis and a row of running sums otherwise, and writes the output
    directly. It stands in, under the C backend, for ``Sum`` with a float64
    accumulator over consecutive axes (see :func:`contiguous_loops`); the
    eight running sums add in another order than one loop would, which only
    changes the float64 total in its last bits.
    """

    __props__ = ("axes",)

    def __init__(self, axes):
        self.axes = tuple(int(a) for a in axes)

    def make_node(self, x):
        shape = [s for d, s in enumerate(x.type.shape) if d not in self.axes]
        out = TensorType(dtype=x.type.dtype, shape=shape)()
        return Apply(self, [x], [out])

    def perform(self, node, inputs, output_storage):
        (x,) = inputs
        total = np.sum(x, axis=self.axes, dtype="float64")
        output_storage[0][0] = np.asarray(total, dtype=x.dtype)

    def c_support_code(self, **kwargs):
        return _SUM_SUPPORT

    def c_code_cache_version(self):
        return ("pylearn_vae_sum", C_VERSION)

    def c_code(self, node, name, inputs, outputs, sub):
        (x,), (z,) = inputs, outputs
        ndim = node.inputs[0].type.ndim
        first, last = self.axes[0], self.axes[-1]
        dtype = node.inputs[0].type.dtype
        out_ndim = ndim - len(self.axes)
        kept = [d for d in range(ndim) if d not in self.axes]
        out_dims = ", ".join(f"PyArray_DIMS(xc)[{d}]" for d in kept) or "0"
        same = " && ".join(
            f"PyArray_DIMS({z})[{i}] == PyArray_DIMS(xc)[{d}]" for i, d in enumerate(kept)
        )
        same = f"&& {same}" if same else ""
        fail = sub["fail"]
        return f"""
        {{
            PyArrayObject* xc = PyArray_GETCONTIGUOUS({x});
            if (!xc) {fail}
            npy_intp outer = 1, red = 1, inner = 1;
            for (int d = 0; d < {ndim}; ++d) {{
                npy_intp n = PyArray_DIMS(xc)[d];
                if (d < {first}) outer *= n; else if (d <= {last}) red *= n; else inner *= n;
            }}
            if (!({z} && PyArray_NDIM({z}) == {out_ndim} && PyArray_IS_C_CONTIGUOUS({z}) {same})) {{
                npy_intp dims[{max(out_ndim, 1)}] = {{{out_dims}}};
                Py_XDECREF({z});
                {z} = (PyArrayObject*) PyArray_EMPTY({out_ndim}, dims, PyArray_TYPE(xc), 0);
                if (!{z}) {{ Py_DECREF(xc); {fail} }}
            }}
            int status = pylearn_vae_sum_{dtype}(
                (const npy_{dtype}*) PyArray_DATA(xc), (npy_{dtype}*) PyArray_DATA({z}),
                outer, red, inner);
            Py_DECREF(xc);
            if (status) {{ PyErr_NoMemory(); {fail} }}
        }}
        """


internals.extend_elemwise_c_parts(VectorisedElemwise, VectorisedElemwise.vectorised_parts)


def _consecutive(axes) -> bool:
    return list(axes) == list(range(axes[0], axes[0] + len(axes)))


@node_rewriter([Sum])
def _use_contiguous_sum(fgraph, node):
    op = node.op
    (x,) = node.inputs
    out = node.outputs[0]
    axes = tuple(range(x.type.ndim)) if op.axis is None else tuple(sorted(op.axis))
    if (
        type(op) is not Sum
        or x.type.dtype not in ("float32", "float64")
        or out.type.dtype != x.type.dtype
        or op.acc_dtype not in (None, "float64")
        or not axes
        or not _consecutive(axes)
    ):
        return None
    return [ContiguousSum(axes)(x)]


@node_rewriter([Elemwise, Sum])
def _use_vectorised_loops(fgraph, node):
    if not internals.rewrite_positions_hold():  # placed among PyTensor's passes by position
        return None
    op = node.op
    if isinstance(op, Sum):
        return _use_contiguous_sum.transform(fgraph, node)
    if type(op) is not Elemwise or not internals.elemwise_c_parts_available():
        return None
    new_op = VectorisedElemwise(
        op.scalar_op,
        inplace_pattern=op.inplace_pattern,
        name=op.name,
        nfunc_spec=op.nfunc_spec,
        openmp=op.openmp,
    )
    return new_op(*node.inputs, return_list=True)


def contiguous_loops():
    """The graph rewrite that gives elementwise loops :class:`VectorisedElemwise`'s
    C code, and its position: after :func:`pylearn_vae.speedups.vecops.vectorise_fused_math`
    (49.1), before the in-place rewrites (49.5)."""
    return in2out(_use_vectorised_loops, name="pylearn_vae_vectorised_loops"), 49.2
