"""Compile Numba code in a second process while this one compiles other code.

A first run spends most of its start compiling: the training step (about
16-20 s for the seed model on this project's 2-core hosts) and the
monitoring function (about 10-15 s), one after the other on one core, and
the monitoring function is called first. With ``SGD.precompile`` (which
``scripts/train.py`` turns on) the two compile side by side:

- :func:`compile_elsewhere` starts a child Python that loads the
  monitoring function's rewritten graph from the graph cache
  (:mod:`pylearn_vae.speedups.graph_cache`) and compiles its Numba code for
  the argument types it will be called with. Numba stores the result in its
  disk cache, where this process finds it at the function's first call,
  which waits for the child;
- meanwhile :func:`compile_here` compiles the training step's Numba code in
  this process, before its first call.

The child only fills a cache. If it failed, or compiled for other argument
types, the first call compiles here as it would have anyway. Nothing the
child does changes a result.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from pylearn_vae.speedups import internals, support

__all__ = ["compile_elsewhere", "compile_here", "CompiledElsewhere"]

#: Seconds the first call waits for the child before compiling itself.
WAIT_SECONDS = 900

_CHILD_CODE = """
import sys
from pylearn_vae.speedups.support import same_installation
if not same_installation(sys.argv[1]):
    raise SystemExit(3)  # other packages: their code would not be this process's
from pylearn_vae.speedups.precompile import _run_job
_run_job(sys.argv[2])
"""


def _argument_type(variable):
    """The Numba type of the value a caller will pass for ``variable`` (a
    C-contiguous, writable array of its dtype and rank), or None."""
    import numba
    from pytensor.tensor.type import TensorType

    if not isinstance(variable.type, TensorType):
        return None
    dtype = numba.from_dtype(np.dtype(variable.type.dtype))
    return numba.types.Array(dtype, variable.type.ndim, "C")


def _placeholder(pytensor_type):
    """A value of ``pytensor_type`` that stands for a shared variable's value
    in the child (its contents are never used), or None."""
    from pytensor.tensor.random.type import RandomGeneratorType
    from pytensor.tensor.type import TensorType

    if isinstance(pytensor_type, TensorType):
        shape = tuple(1 if d is None else d for d in pytensor_type.shape)
        return np.zeros(shape, dtype=pytensor_type.dtype)
    if isinstance(pytensor_type, RandomGeneratorType):
        return np.random.default_rng(0)
    return None


def _signature(function) -> tuple | None:
    """The Numba signature ``function``'s dispatcher will be called with: the
    explicit inputs' predicted types, the shared values' actual types."""
    import numba

    specs = internals.input_specs(function)
    cells = internals.vm_input_cells(function)
    fgraph = internals.compiled_graph(function)
    if specs is None or cells is None or fgraph is None or len(cells) != len(fgraph.inputs):
        return None
    explicit = {id(spec.variable) for spec in specs if not spec.implicit}
    fgraph_inputs = fgraph.inputs
    types = []
    for variable, cell in zip(fgraph_inputs, cells):
        if id(variable) in explicit:
            found = _argument_type(variable)
        else:
            try:
                found = numba.typeof(cell[0])
            except ValueError:
                found = None
        if found is None:
            return None
        types.append(found)
    return tuple(types)


def compile_elsewhere(function, graph_path: Path, inputs, shared, speedups: bool):
    """Start compiling ``function`` (just built, its graph stored at
    ``graph_path`` by the graph cache) in a child process; return it wrapped
    so that its first call waits for the child. Returns ``function`` itself
    where that cannot be done (no signature, no child process)."""
    import pytensor

    dispatcher = internals.compiled_dispatcher(function)
    if not pytensor.config.numba__cache or dispatcher is None:
        return function  # (without Numba's disk cache nothing compiled elsewhere is found)
    signature = _signature(function)
    if signature is None or any(_placeholder(s.type) is None for s in shared):
        return function
    if internals.in_numba_cache(dispatcher, signature):
        return function  # a graph rewritten anew whose code Numba already has
    job = {
        "graph": str(graph_path),
        "input_types": [v.type for v in inputs],
        "shared_types": [s.type for s in shared],
        "speedups": speedups,
        "signature": signature,
    }
    try:
        handle, name = tempfile.mkstemp(prefix="pylearn_vae_compile_", suffix=".pkl")
    except OSError:
        return function
    try:
        with os.fdopen(handle, "wb") as stream:
            pickle.dump(job, stream)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        os.unlink(name)
        return function
    process = support.start_helper(
        _CHILD_CODE, [support.installation_fingerprint(), name], output=False
    )
    if process is None:
        os.unlink(name)
        return function
    return CompiledElsewhere(function, process, Path(name))


def compile_here(function) -> bool:
    """Compile ``function``'s Numba code now, for the argument types it will
    be called with, instead of at its first call; whether that was done.
    A failure is left for the first call to meet (and handle) again."""
    function = support.innermost(function)
    dispatcher = internals.compiled_dispatcher(function)
    signature = _signature(function) if dispatcher is not None else None
    if signature is None:
        return False
    try:
        dispatcher.compile(signature)
    except Exception:
        return False
    return True


class CompiledElsewhere:
    """``function``, whose Numba code a child process is compiling: the first
    call waits for the child (then finds the code in Numba's disk cache).
    Every other attribute is the function's."""

    def __init__(self, function, process, job_file: Path) -> None:
        self.function = function
        self._process = process
        self._job_file = job_file
        self._owner = os.getpid()
        support.track_helper(self)

    def _take(self):
        """The child, once (None if taken, or in a forked copy of this process)."""
        process, self._process = self._process, None
        support.untrack_helper(self)
        return process if os.getpid() == self._owner else None

    def wait(self) -> bool:
        """Wait for the child to end; whether it compiled the function."""
        process = self._take()
        if process is None:
            return False
        try:
            process.wait(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:  # too slow: compile here instead
            process.kill()
            process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            self._job_file.unlink(missing_ok=True)
        return process.returncode == 0

    def cancel(self) -> None:
        """Stop the child (its work is no longer wanted)."""
        process = self._take()
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait()
            self._job_file.unlink(missing_ok=True)

    def __call__(self, *args, **kwargs):
        if self._process is not None:
            self.wait()
        return self.function(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.function, name)


def _run_job(job_file: str) -> None:
    """In the child: load the stored graph and compile it for the signature."""
    from pytensor.compile.mode import get_mode
    from pytensor.compile.sharedvalue import SharedVariable

    from pylearn_vae.speedups import numba_im2col
    from pylearn_vae.speedups.graph_cache import _load

    numba_im2col.register()  # the convolutions' Numba code

    with open(job_file, "rb") as stream:
        job = pickle.load(stream)
    inputs = [t() for t in job["input_types"]]
    shared = [
        SharedVariable(type=t, value=_placeholder(t), strict=False) for t in job["shared_types"]
    ]
    mode = get_mode("NUMBA")
    if job["speedups"]:
        mode = support.speedup_mode(mode)
    function = _load(Path(job["graph"]), inputs, shared, mode, single=False)
    dispatcher = internals.compiled_dispatcher(function)
    if dispatcher is None:
        raise SystemExit(4)  # nothing to compile here: the first call compiles
    dispatcher.compile(job["signature"])
