"""A function's Numba code compiled in a second process is the code the first
call then runs (found in Numba's disk cache), and nothing depends on it.

Each scenario runs in a new process with an empty PyTensor compile
directory, so the graph is built cold, as on a first run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pylearn_vae.compile import resolve_mode
from pylearn_vae.speedups import internals
from tests.helpers.markers import numba_only

REPO = Path(__file__).resolve().parents[2]

# Tests of the speed machinery itself: skipped when PYLEARN_VAE_SPEEDUPS=0 turns it off.
pytestmark = [numba_only, pytest.mark.speedups]

SCRIPT = """
import json, sys, tempfile
import numpy as np
import pytensor, pytensor.tensor as pt
from pytensor.compile import Function
from pylearn_vae.speedups import internals
from pylearn_vae.ops.im2col import Im2Col
from pylearn_vae.speedups import precompile
from pylearn_vae.compile import function
from pylearn_vae.utils.rng import SymbolicRNG
{sabotage}
rng = SymbolicRNG(seed=3)
W = pytensor.shared(np.linspace(-1, 1, 12, dtype="float32").reshape(4, 3), name="W")
x = pt.matrix("x", dtype="float32")
h = pt.tanh(pt.dot(x, W)) + rng.normal((x.shape[0], 3), dtype="float32")
# (patches: a convolution's op, whose Numba code the child must register)
patches = Im2Col((2, 2), (2, 2))(x.reshape((x.shape[0], 2, 2, 1)))
cost = (h ** 2).sum() * np.float32(0.1) + patches.sum() * np.float32(0.01)
from pylearn_vae import speedups
with speedups.second_process_compiles(True):
    step = function([x], cost, updates=[(W, W - np.float32(0.1) * pytensor.grad(cost, W))],
                    precompile={precompile})
chain = [step]
while not isinstance(chain[-1], Function):
    chain.append(chain[-1].function)
kind = "CompiledElsewhere" if any(isinstance(c, precompile.CompiledElsewhere) for c in chain) else "here"
inner = chain[-1]
values = [float(step(np.ones((5, 4), dtype="float32") * k)) for k in range(3)]
stats = internals.compiled_dispatcher(inner).stats
print(json.dumps({{"kind": kind, "values": values, "W": W.get_value().tolist(),
                  "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values()),
                  "left": sorted(p.name for p in __import__("pathlib").Path(
                      tempfile.gettempdir()).glob("pylearn_vae_compile_*"))}}))
"""


def _run(tmp_path: Path, precompile: bool, sabotage: str = "") -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    compiledir = tmp_path / f"compiledir_{precompile}_{bool(sabotage)}"
    env["PYTENSOR_FLAGS"] = ",".join(
        f for f in (env.get("PYTENSOR_FLAGS", ""), f"base_compiledir={compiledir}") if f
    )
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "step.py"
        script.write_text(SCRIPT.format(sabotage=sabotage, precompile=precompile))
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600
        )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.subprocess
@pytest.mark.cold_cache
def test_the_first_call_runs_the_code_the_second_process_compiled(tmp_path):
    """With the second process: the first call loads its code from Numba's
    cache. With a second process that fails: the call compiles here. Both
    give the same numbers, and leave no job file behind."""
    elsewhere = _run(tmp_path, precompile=True)
    failed = _run(
        tmp_path,
        precompile=True,
        sabotage="precompile._CHILD_CODE = 'import sys; sys.exit(3)'",
    )
    assert elsewhere["kind"] == failed["kind"] == "CompiledElsewhere"
    assert elsewhere["hits"] == 1 and elsewhere["misses"] == 0  # loaded from the child's
    assert failed["misses"] == 1 and failed["hits"] == 0  # compiled in this process
    assert elsewhere["values"] == failed["values"] and elsewhere["W"] == failed["W"]
    assert elsewhere["left"] == [] and failed["left"] == []


@pytest.mark.subprocess
@pytest.mark.cold_cache
def test_a_process_that_exits_first_leaves_no_compile_running(tmp_path):
    code = (
        "import time, numpy as np, pytensor, pytensor.tensor as pt\n"
        "from pylearn_vae.speedups import precompile\n"
        "from pylearn_vae.compile import function\n"
        "precompile._CHILD_CODE = 'import time; time.sleep(600)'\n"
        "x = pt.vector('x', dtype='float32')\n"
        "from pylearn_vae import speedups\n"
        "with speedups.second_process_compiles(True):\n"
        "    step = function([x], pt.exp(x).sum(), precompile=True)\n"
        "print(step._process.pid, step._job_file)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env["PYTENSOR_FLAGS"] = ",".join(
        f for f in (env.get("PYTENSOR_FLAGS", ""), f"base_compiledir={tmp_path}") if f
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pid, job_file = done.stdout.split()
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)
    assert not Path(job_file).exists()


@pytest.mark.compiles
def test_the_dispatcher_of_a_numba_function_is_where_precompile_looks():
    """``internals.compiled_dispatcher`` reads PyTensor's ``Function.vm.jit_fn``;
    if a PyTensor moves it, compiling elsewhere silently stops (and this fails)."""
    import numba
    import pytensor
    import pytensor.tensor as pt

    x = pt.vector("x", dtype="float32")
    fn = pytensor.function([x], 2 * x, mode="NUMBA")
    dispatcher = internals.compiled_dispatcher(fn)
    assert isinstance(dispatcher, numba.core.dispatcher.Dispatcher)
    assert len(fn.vm.inputs) == len(fn.maker.fgraph.inputs)


@pytest.mark.compiles
def test_compile_here_compiles_the_signature_the_first_call_uses():
    """The step is compiled ahead of its first call for the argument types it
    is then called with: the call adds no second compiled version."""
    import numpy as np
    import pytensor
    import pytensor.tensor as pt
    from pytensor.compile import Function

    from pylearn_vae.compile import function
    from pylearn_vae.speedups.precompile import compile_here
    from pylearn_vae.utils.rng import SymbolicRNG

    data = pytensor.shared(np.ones((10, 3), dtype="float32"), name="data")
    index = pt.tensor("index", dtype="int64", shape=(None,))
    noise = SymbolicRNG(seed=1).uniform((index.shape[0], 3), dtype="float32")
    step = function([index], (data[index] * noise).sum(), updates=[(data, data * 0.5)])
    inner = step
    while not isinstance(inner, Function):
        inner = inner.function
    dispatcher = internals.compiled_dispatcher(inner)
    assert compile_here(step)
    assert len(dispatcher.overloads) == 1
    step(np.arange(4))
    assert len(dispatcher.overloads) == 1


@pytest.mark.compiles
def test_code_numba_already_has_is_not_compiled_elsewhere(monkeypatch, tmp_path):
    """``internals.in_numba_cache`` (a Numba internal, named once) tells a
    function whose code is in Numba's disk cache from one whose code is not;
    only the second gets a second process. If Numba moves it, every first
    run with a rewritten graph pays a needless second process (and this fails)."""
    import numpy as np
    import pytensor.tensor as pt

    from pylearn_vae.speedups import graph_cache, precompile, support

    monkeypatch.setattr(graph_cache, "_cache_dir", lambda: tmp_path)  # graphs rewritten anew
    started = []  # (no process is started: as if none could be)
    monkeypatch.setattr(support, "start_helper", lambda *args, **kw: started.append(args))
    x = pt.vector("x", dtype="float32")
    unique = np.float32(np.random.default_rng().uniform(2, 3))  # a graph no one has compiled

    def build():
        return graph_cache.cached_function(
            [x],
            pt.exp(x).sum() * unique,
            [],
            resolve_mode(),
            on_stored=lambda fn, path, ins, shared: precompile.compile_elsewhere(
                fn, path, ins, shared, False
            ),
        )

    for path in tmp_path.glob("*.pkl"):
        path.unlink()
    first = build()
    assert len(started) == 1  # not cached: it would compile elsewhere
    dispatcher = internals.compiled_dispatcher(first)
    signature = precompile._signature(first)
    assert not internals.in_numba_cache(dispatcher, signature)
    first(np.ones(3, dtype="float32"))  # compiles here, and Numba stores the code
    for path in tmp_path.glob("*.pkl"):
        path.unlink()
    again = build()
    assert internals.in_numba_cache(internals.compiled_dispatcher(again), signature)
    assert len(started) == 1  # cached: nothing started
