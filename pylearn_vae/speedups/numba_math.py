"""The Numba backend's speed-ups: vectorisable math, inlined fused loops, known layouts.

* The vectorised float32 operations of :mod:`pylearn_vae.speedups.vecops` get
  the Numba kernels of :mod:`pylearn_vae.speedups.vecmath`.
* Fused elementwise loops (``InlinedComposite``) are compiled inline, with
  the arithmetic written as operators so that it takes the loop's fast-math
  flags.
* Expand/squeeze shuffles and matrix transposes return arrays whose layout
  Numba knows at compile time (``ContiguousDimShuffle``).

:data:`NUMBA_REWRITES` are the graph rewrites that put them in a graph;
:func:`pylearn_vae.speedups.support.speedup_mode` adds them to Numba modes.
"""

from __future__ import annotations

from hashlib import sha256

import numpy as np
from numba import njit
from pytensor import config
from pytensor.graph.rewriting.basic import in2out, node_rewriter
from pytensor.scalar import basic as ps
from pytensor.tensor.elemwise import DimShuffle, Elemwise

from pylearn_vae.speedups import internals, vecmath
from pylearn_vae.speedups.source import source_version
from pylearn_vae.speedups.vecops import (
    VECTORISED,
    VecExp,
    VecLog,
    VecLog1p,
    VecSigmoid,
    VecSoftplus,
    VecSqrt,
    use_vectorised_math,
)

numba_funcify = internals.get("numba_funcify")
numba_funcify_and_cache_key = internals.get("numba_funcify_and_cache_key")
numba_njit = internals.get("numba_njit")
register_funcify_and_cache_key = internals.get("register_funcify_and_cache_key")

__all__ = [
    "use_vectorised_math",
    "inline_fused_loops",
    "contiguous_dimshuffles",
    "NUMBA_REWRITES",
    "VECTORISED",
    "KERNELS",
    "InlinedComposite",
    "ContiguousDimShuffle",
]

# In every cache key below: changes with vecmath's code or the code generated
# here, so that Numba's on-disk cache is not reused.
_VERSION = source_version()


#: Each vectorised operation's Numba kernel.
KERNELS = {
    VecExp: vecmath.exp32,
    VecLog: vecmath.log32,
    VecLog1p: vecmath.log1p32,
    VecSqrt: vecmath.sqrt32,
    VecSoftplus: vecmath.softplus32,
    VecSigmoid: vecmath.sigmoid32,
}


def _numba_kernel(op, node=None, **kwargs):
    # Used where the operation is not part of an InlinedComposite: a plain
    # function around the kernel (PyTensor calls it through a ``*args``
    # wrapper, which cannot inline an ``inline="always"`` function).
    kernel = KERNELS[type(op)]

    @njit(forceinline=True)
    def scalar(x):
        return kernel(x)

    key = sha256(f"pylearn_vae:{type(op).__name__}:{_VERSION}".encode()).hexdigest()
    return scalar, key


for _cls in KERNELS:
    register_funcify_and_cache_key(_cls)(_numba_kernel)


class InlinedComposite(ps.Composite):
    """A fused elementwise expression whose Numba function is always inlined.

    PyTensor compiles each fused expression (``Composite``) as a function of
    its own that the elementwise loop calls once per element. LLVM inlines
    the call only when the expression is small; otherwise every element pays
    a call and the loop cannot be vectorised (several times slower per
    element; docs/performance.md). This
    subclass differs only in its Numba code, which is force-inlined into
    the loop.
    """


#: LLVM fast-math flags of the fused expressions: PyTensor's set without
#: reassociation. With it, a scalar function such as ``a * b / c`` compiled
#: on its own and its copy optimised inside the whole step could round
#: differently; which copy a call reached depended on whether the step was
#: compiled in the process or loaded from the on-disk cache, so a run
#: resumed with a warm cache was not bit-identical to one started cold.
#: Contraction into FMA and reciprocals stay (without any flags the
#: Bernoulli loops of the seed model took 40-60% longer).
FUSED_FASTMATH = frozenset({"arcp", "contract", "afn", "nsz"})

#: Scalar operations written as Python operators in the fused expressions,
#: so that they take the expression's fast-math flags.
_OPERATORS = {
    ps.Add: lambda args: " + ".join(args),
    ps.Mul: lambda args: " * ".join(args),
    ps.Sub: lambda args: f"{args[0]} - {args[1]}",
    ps.TrueDiv: lambda args: f"{args[0]} / {args[1]}",
    ps.Neg: lambda args: f"-{args[0]}",
}


def _float_dtype(node) -> str | None:
    """The one float dtype of all of ``node``'s inputs and outputs, if there is one."""
    dtypes = {v.type.dtype for v in (*node.inputs, *node.outputs)}
    if len(dtypes) != 1:
        return None
    (dtype,) = dtypes
    return dtype if dtype in ("float32", "float64") else None


def _scalar_function(node):
    """The Numba function for one scalar operation inside a fused expression,
    inlined into it at Numba's level (so it takes the expression's flags)."""
    op = node.op
    if type(op) in KERNELS:
        return KERNELS[type(op)]
    # Fused before the vectorising rewrite ran (PyTensor fuses some
    # expressions early): float32 math still gets the vectorisable kernel.
    vectorised = VECTORISED.get(type(op))
    if vectorised is not None and _float_dtype(node) == "float32":
        return KERNELS[vectorised]
    fn = numba_funcify(op, node=node)
    py_func = getattr(fn, "py_func", None)
    return fn if py_func is None else numba_njit(py_func, inline="always")


def _composite_source(fgraph):
    """Python source of one fused expression and the names it uses.

    Arithmetic between values of one float type is written with operators
    and the vectorisable math as calls to vecmath's kernels (inlined into
    the expression by Numba); any other operation calls PyTensor's Numba
    function for it.
    """
    names = {v: f"i{k}" for k, v in enumerate(fgraph.inputs)}
    env, lines = {}, []

    def name(v):
        if v not in names:  # a constant
            names[v] = f"c{len(env)}"
            env[names[v]] = np.asarray(v.data, dtype=v.type.dtype)[()]
        return names[v]

    for j, inner in enumerate(fgraph.toposort()):
        args = [name(v) for v in inner.inputs]
        outs = [f"v{j}_{k}" for k in range(len(inner.outputs))]
        operator = _OPERATORS.get(type(inner.op))
        if operator is not None and _float_dtype(inner):
            value = f"({operator(args)})"
        else:
            env[f"f{j}"] = _scalar_function(inner)
            value = f"f{j}({', '.join(args)})"
        lines.append(f"    {', '.join(outs)} = {value}\n")
        names.update(zip(inner.outputs, outs))
    params = ", ".join(f"i{k}" for k in range(len(fgraph.inputs)))
    results = ", ".join(name(v) for v in fgraph.outputs)
    src = f"def numba_composite({params}):\n{''.join(lines)}    return {results}\n"
    return src, env


@register_funcify_and_cache_key(InlinedComposite)
def _numba_inlined_composite(op, node, **kwargs):
    kwargs.pop("storage_map", None)
    # PyTensor's key for the same expression (nothing is compiled here).
    _, key = numba_funcify_and_cache_key(
        op.fgraph, squeeze_output=True, fgraph_name="numba_composite", **kwargs
    )
    src, env = _composite_source(op.fgraph)
    exec(compile(src, "<pylearn_vae numba_composite>", "exec"), env)
    flags = set(FUSED_FASTMATH) if config.numba__fastmath else False
    composite = numba_njit(
        env["numba_composite"], forceinline=True, fastmath=flags, error_model="numpy"
    )
    storing = internals.core_calls_through_storing_wrapper()
    if storing:
        # This PyTensor's elemwise loop calls a small function that evaluates
        # the expression and stores its results; LLVM inlines the expression
        # into that function and then leaves the (now large) function as a
        # call per element. Providing the storing function ourselves
        # (``internals.mark_storing``), compiled with ``forceinline``, puts the whole
        # expression into the loop body.
        composite = _storing_function(composite, len(op.inputs), len(op.outputs), flags)
    if key is not None:
        key = sha256(
            f"pylearn_vae:InlinedComposite:{_VERSION}:{storing}:{sorted(flags or [])}:{key}".encode()
        ).hexdigest()
    return composite, key


def _storing_function(composite, n_inputs: int, n_outputs: int, flags):
    """``composite`` as a function that writes its results into output arguments."""
    ins = ", ".join(f"i{k}" for k in range(n_inputs))
    outs = [f"o{k}" for k in range(n_outputs)]
    temps = [f"t{k}" for k in range(n_outputs)]
    stores = "".join(f"    {o}[...] = {t}\n" for o, t in zip(outs, temps))
    src = (
        f"def inlined_composite({ins}, {', '.join(outs)}):\n"
        f"    {', '.join(temps)} = composite({ins})\n"
        f"{stores}"
    )
    namespace = {"composite": composite}
    exec(compile(src, "<pylearn_vae inlined_composite>", "exec"), namespace)
    inlined = numba_njit(namespace["inlined_composite"], forceinline=True, fastmath=flags)
    internals.mark_storing(inlined)
    return inlined


@node_rewriter([Elemwise])
def _inline_composite(fgraph, node):
    scalar_op = node.op.scalar_op
    if type(scalar_op) is not ps.Composite:
        return None
    new_op = Elemwise(
        InlinedComposite(scalar_op.inputs, scalar_op.outputs, name=scalar_op.name),
        inplace_pattern=node.op.inplace_pattern,
    )
    return new_op(*node.inputs, return_list=True)


def inline_fused_loops():
    """The graph rewrite that marks fused loops for inlining, and its position:
    after elementwise fusion (49), before in-place rewrites (49.5)."""
    return in2out(_inline_composite, name="pylearn_vae_inline_composites"), 49.2


class ContiguousDimShuffle(DimShuffle):
    """A DimShuffle whose Numba result has a layout Numba knows at compile time.

    PyTensor's Numba code makes every DimShuffle an ``as_strided`` view, whose
    layout Numba types as "any". Elementwise loops over such arrays index
    with run-time strides and LLVM does not vectorise them (the Bernoulli
    gradient loop of the seed model, whose input goes through the
    criterion's ``(1, batch, 784)`` samples axis, ran several times slower
    than the same loop over plain arrays), and ``np.dot`` copies them before
    calling BLAS. This subclass,
    used for pure expand/squeeze shuffles and for matrix transposes,
    reshapes or transposes a C-contiguous array instead, so that the result
    is typed C- or Fortran-contiguous (BLAS reads a Fortran-ordered matrix
    as it is); a non-contiguous input is copied first.
    """


# PyTensor 3.0-3.2's DimShuffle reads its C code from a file named relative
# to the module that defines the class: a subclass names it in full.
_DIMSHUFFLE_C_FILE = internals.dimshuffle_c_file()
if _DIMSHUFFLE_C_FILE:
    ContiguousDimShuffle.c_func_file = _DIMSHUFFLE_C_FILE


@register_funcify_and_cache_key(ContiguousDimShuffle)
def _numba_contiguous_dimshuffle(op, node, **kwargs):
    if tuple(op.new_order) == (1, 0):
        body = "    return np.ascontiguousarray(x).T\n"
    else:
        # Dropped axes have length 1; the kept ones keep their order.
        parts = ["1" if entry == "x" else f"shape[{entry}]" for entry in op.new_order]
        comma = "," if len(parts) == 1 else ""
        body = (
            "    shape = x.shape\n"
            f"    return np.ascontiguousarray(x).reshape(({', '.join(parts)}{comma}))\n"
        )
    src = "def contiguous_dimshuffle(x):\n" + body
    namespace = {"np": np}
    exec(compile(src, "<pylearn_vae contiguous_dimshuffle>", "exec"), namespace)
    fn = numba_njit(namespace["contiguous_dimshuffle"])
    key = sha256(
        f"pylearn_vae:ContiguousDimShuffle:{_VERSION}:{op.input_ndim}:{op.new_order}".encode()
    ).hexdigest()
    return fn, key


@node_rewriter([DimShuffle])
def _contiguous_dimshuffle(fgraph, node):
    op = node.op
    if type(op) is not DimShuffle:
        return None
    if not (op.is_expand_dims or op.is_squeeze or tuple(op.new_order) == (1, 0)):
        return None
    if not op.new_order:  # to 0-d: PyTensor's own code handles it
        return None
    new_op = ContiguousDimShuffle(input_ndim=op.input_ndim, new_order=op.new_order)
    return [new_op(node.inputs[0])]


def contiguous_dimshuffles():
    """The graph rewrite that gives expand/squeeze shuffles and matrix transposes
    a known layout, and its position: with the fusion marks, before in-place
    rewrites (49.5)."""
    return in2out(_contiguous_dimshuffle, name="pylearn_vae_contiguous_dimshuffle"), 49.25


#: The rewrites (with positions) that ``resolve_mode`` adds to Numba modes;
#: built once so that resolving a mode twice does not add them twice.
NUMBA_REWRITES = [use_vectorised_math(), inline_fused_loops(), contiguous_dimshuffles()]
