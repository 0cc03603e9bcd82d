"""The Numba speed-ups are used only where they work, and training never depends on them.

Each scenario runs in its own process (the decision is made once per
process), on a tiny model, so the fallback paths are exercised for real:
a PyTensor that lacks an internal, a probe that fails, and a graph that
Numba refuses to compile at its first call.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from pylearn_vae.speedups import internals, support
from tests.helpers.markers import numba_only

# Tests of the speed machinery itself: skipped when PYLEARN_VAE_SPEEDUPS=0 turns it off.
pytestmark = pytest.mark.speedups

REPO = Path(__file__).resolve().parents[2]


TRAIN = """
import sys, warnings
import numpy as np
from pylearn_vae.speedups import support, internals, numba_math
{sabotage}
from pylearn_vae.costs.vae import VAECriterion
from pylearn_vae.datasets import DenseDesignMatrix
from pylearn_vae.training_algorithms.learning_rule import Momentum
from pylearn_vae.training_algorithms.sgd import SGD
from tests.helpers.models import binary_data, make_vae

model = make_vae(nvis=12, nhid=3, hidden=8, seed=2)
data = DenseDesignMatrix(X=binary_data(200, 12, seed=1))
algo = SGD(learning_rate=0.05, cost=VAECriterion(), batch_size=20,
           learning_rule=Momentum(0.5), monitoring_dataset=data)
algo.progress = False
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    algo.setup(model, data)
    model.monitor()
    for _ in range(3):
        algo.train(data)
        model.monitor()
ours = [w for w in caught if issubclass(w.category, support.SpeedupsUnavailableWarning)]
print("WARNINGS", len(ours), "|".join(str(w.message).split(":")[1].strip() for w in ours))
print("SPEEDUPS", support.speedups_enabled())
step = algo._step_function(20)
print("LINKER", type(getattr(step, "function", step).maker.linker).__name__)
print("OBJECTIVE", " ".join(str(v) for v in model.monitor.channels["objective"].val_record))
"""


def _run(sabotage: str, compiledir: Path | None = None, cwd: Path = REPO, **env_extra) -> dict:
    """Train the tiny model in a new process after running ``sabotage`` there;
    with ``compiledir``, from an empty PyTensor cache; from the folder ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(support.ENV_VARIABLE, None)
    if compiledir is not None:
        env["PYTENSOR_FLAGS"] = ",".join(
            f for f in (env.get("PYTENSOR_FLAGS", ""), f"base_compiledir={compiledir}") if f
        )
    env.update(env_extra)
    with tempfile.TemporaryDirectory() as folder:  # a script: its folder, not cwd, leads sys.path
        script = Path(folder) / "train_tiny.py"
        script.write_text(TRAIN.format(sabotage=sabotage))
        done = subprocess.run(
            [sys.executable, str(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            cwd=cwd,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    result = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        result[key] = value
    objective = [float(v) for v in result["OBJECTIVE"].split()]
    assert len(objective) == 4 and all(np.isfinite(objective))
    assert objective[-1] < objective[0]  # it trains
    return result


def _background_probe_runs(tmp_path: Path, probe_code: str) -> str:
    """Sabotage: no passed probe on record (a marker under ``tmp_path``), and
    the background probe's process runs ``probe_code``."""
    return (
        "from pathlib import Path\n"
        f"support.probe_marker = lambda: Path({str(tmp_path / 'probe.ok')!r})\n"
        f"support._PROBE_CODE = {probe_code!r}"
    )


@numba_only
@pytest.mark.subprocess
@pytest.mark.cold_cache
def test_speedups_are_used_here_and_remembered():
    """On the PyTensor and Numba this suite runs with, the speed-ups pass the
    probe, the training step uses them, and the passed probe is recorded."""
    result = _run("")
    assert result["WARNINGS"].startswith("0")
    assert result["SPEEDUPS"] == "True"
    assert result["LINKER"] == "PositionalNumbaLinker"
    assert support.probe_marker().exists()


@numba_only
@pytest.mark.subprocess
@pytest.mark.cold_cache
def test_the_probe_runs_beside_training_and_records_its_pass(tmp_path):
    """With no record of a passed probe, the probe runs in a second process
    while training compiles, and its pass is recorded. It finds this package
    even from a folder that holds a broken copy of it (a child started with
    ``python -c`` puts its working folder first on the import path)."""
    marker = tmp_path / "record" / "probe.ok"
    decoy = tmp_path / "elsewhere"
    (decoy / "pylearn_vae").mkdir(parents=True)
    (decoy / "pylearn_vae" / "__init__.py").write_text("raise ImportError('the decoy copy')\n")
    sabotage = (
        "from pathlib import Path\n"
        f"support.probe_marker = lambda: Path({str(marker)!r})\n"
        "def not_here(marker):\n"
        "    raise AssertionError('the probe ran in the training process')\n"
        "support._probe_here = not_here"
    )
    result = _run(sabotage, cwd=decoy)
    assert result["WARNINGS"].startswith("0"), result["WARNINGS"]
    assert result["SPEEDUPS"] == "True"
    assert result["LINKER"] == "PositionalNumbaLinker"
    assert marker.read_text() == "ok\n"


@numba_only
@pytest.mark.subprocess
@pytest.mark.cold_cache
def test_a_probe_failing_in_the_background_undoes_what_ran_before_its_verdict(tmp_path):
    """The probe's verdict comes after the first compiled call (the first
    monitoring pass) has run with the speed-ups. That call is undone: its
    random state goes back and it runs again with PyTensor's own code, so
    the whole run equals one made without the speed-ups, to the last bit."""
    sabotage = _background_probe_runs(
        tmp_path, "import time; time.sleep(3); print('PROBE-FAILED made to fail')"
    )
    result = _run(sabotage)
    assert result["WARNINGS"].startswith("1 ")
    assert "made to fail" in result["WARNINGS"]
    assert result["SPEEDUPS"] == "False"
    assert result["LINKER"] == "NumbaLinker"
    assert not (tmp_path / "probe.ok").exists()
    without = _run("", **{support.ENV_VARIABLE: "0"})
    assert result["OBJECTIVE"] == without["OBJECTIVE"]


@numba_only
@pytest.mark.subprocess
@pytest.mark.cold_cache
def test_a_probe_process_that_crashes_turns_the_speedups_off(tmp_path):
    """A crash (here an abort; a segmentation fault in compiled code alike)
    is the probe's verdict: the process does not try the probe itself."""
    sabotage = _background_probe_runs(tmp_path, "import os; os.abort()")
    result = _run(sabotage)
    assert result["WARNINGS"].startswith("1 ")
    assert "the probe's process ended with code" in result["WARNINGS"]
    assert result["SPEEDUPS"] == "False"


@numba_only
@pytest.mark.subprocess
@pytest.mark.cold_cache
def test_a_probe_stopped_by_a_signal_runs_again_here(tmp_path):
    """A probe killed from outside (a Ctrl-C, a SIGTERM to a process group)
    says nothing about the speed-ups: the process probes itself instead of
    turning them off."""
    sabotage = _background_probe_runs(
        tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    )
    result = _run(sabotage)
    assert result["WARNINGS"].startswith("0"), result["WARNINGS"]
    assert result["SPEEDUPS"] == "True"
    assert (tmp_path / "probe.ok").read_text() == "ok\n"


@pytest.mark.subprocess
@pytest.mark.cold_cache
def test_a_helper_process_gets_this_process_settings_and_its_own_session(tmp_path):
    """The compile folder reaches the helper intact, even with a quote, a
    comma, a space and a backslash in its name (PyTensor parses its flags like
    a shell), and the helper is not in the terminal's process group."""
    folder = tmp_path / "o'brien, x\\y"
    code = (
        "import os, pytensor\n"
        "from pylearn_vae.speedups import support\n"
        "child = support.start_helper('import os, pytensor; "
        "print(pytensor.config.base_compiledir); print(os.getsid(0))', [])\n"
        "out, err = child.communicate(timeout=120)\n"
        "print(pytensor.config.base_compiledir)\n"
        "print(os.getsid(0))\n"
        "print(out, end='')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env["PYTENSOR_FLAGS"] = "base_compiledir=" + shlex.quote(str(folder))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    parent_dir, parent_session, child_dir, child_session = done.stdout.splitlines()
    assert parent_dir == str(folder) and child_dir == parent_dir
    assert child_session != parent_session


@numba_only
@pytest.mark.subprocess
def test_a_short_process_leaves_no_probe_running(tmp_path):
    """A process that exits before it needs the verdict ends its probe."""
    code = (
        "from pathlib import Path\n"
        "from pylearn_vae.speedups import support\n"
        f"support.probe_marker = lambda: Path({str(tmp_path / 'probe.ok')!r})\n"
        "support._PROBE_CODE = 'import time; time.sleep(600)'\n"
        "assert support.speedups_enabled() and support.probe_pending()\n"
        "print(support._DECISION.pending.process.pid)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(support.ENV_VARIABLE, None)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pid = int(done.stdout.split()[-1])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.compiles
def test_a_failed_verdict_restores_what_the_first_call_updated(monkeypatch):
    """In one process: a function that updates a shared counter runs once with
    the speed-ups before the (failing) verdict; the counter is put back and
    the plain rebuild's call is the only one that counts."""
    import pytensor
    import pytensor.tensor as pt

    counter = pytensor.shared(np.float32(0), name="counter")
    step = pt.scalar("step", dtype="float32")
    fast = pytensor.function([step], counter + step, updates=[(counter, counter + step)])
    plain = pytensor.function([step], counter + 10 * step, updates=[(counter, counter + 10 * step)])

    class FailingProbe:
        def verdict(self):
            return "the probe says no"

        def cancel(self):
            pass

    decision = support._Decision()
    decision.enabled, decision.pending = True, FailingProbe()
    monkeypatch.setattr(support, "_DECISION", decision)
    monkeypatch.delenv(support.ENV_VARIABLE, raising=False)
    wrapped = support.FallbackOnFirstCall(fast, lambda: plain)
    with pytest.warns(support.SpeedupsUnavailableWarning, match="the probe says no"):
        assert wrapped(np.float32(1)) == 10
    assert counter.get_value() == 10
    assert wrapped(np.float32(1)) == 20 and counter.get_value() == 20
    assert not support.speedups_enabled() and not support.probe_pending()


@numba_only
@pytest.mark.subprocess
@pytest.mark.cold_cache
def test_a_missing_internal_turns_the_speedups_off_with_one_warning():
    sabotage = (
        'internals.REQUIRED["gone"] = internals.Internal('
        '"pytensor.link.numba.dispatch.basic", "no_such_thing", ("numba",))'
    )
    result = _run(sabotage)
    assert result["WARNINGS"].startswith("1 ")
    assert "lacks pytensor.link.numba.dispatch.basic.no_such_thing" in result["WARNINGS"]
    assert result["SPEEDUPS"] == "False"
    assert result["LINKER"] == "NumbaLinker"


@numba_only
@pytest.mark.subprocess
@pytest.mark.cold_cache
def test_a_graph_numba_cannot_compile_falls_back_at_its_first_call(tmp_path):
    """The probe is skipped (as after an earlier passed probe), and every fused
    loop's generated code is broken: each function fails in Numba at its first
    call, is rebuilt with PyTensor's own code, and training goes on. (An empty
    cache: a cached step would not need the broken code.)"""
    sabotage = (
        "support._why_unusable = lambda: ('', None)\n"
        "original = numba_math._composite_source\n"
        "def broken(fgraph):\n"
        "    src, env = original(fgraph)\n"
        "    return src.replace('    return ', '    return undefined_name + ', 1), env\n"
        "numba_math._composite_source = broken"
    )
    result = _run(sabotage, tmp_path)
    assert result["WARNINGS"].startswith("1 ")
    assert "Numba could not compile a graph with them" in result["WARNINGS"]
    assert result["SPEEDUPS"] == "False"
    assert result["LINKER"] == "NumbaLinker"


@numba_only
@pytest.mark.subprocess
@pytest.mark.cold_cache
def test_turned_off_by_the_environment_without_a_warning():
    result = _run("", **{support.ENV_VARIABLE: "0"})
    assert result["WARNINGS"].startswith("0")
    assert result["SPEEDUPS"] == "False"
    assert result["LINKER"] == "NumbaLinker"


def test_fallback_wrapper_rebuilds_only_for_numba_failures(monkeypatch):
    from numba.core.errors import TypingError

    calls, reasons = [], []
    monkeypatch.setattr(support, "disable_speedups", reasons.append)
    decided = support._Decision()
    decided.enabled = True  # as on an install where the probe passed
    monkeypatch.setattr(support, "_DECISION", decided)
    monkeypatch.delenv(support.ENV_VARIABLE, raising=False)

    def broken(*args):
        calls.append("fast")
        raise TypingError("cannot type this")

    def plain(*args):
        calls.append("plain")
        return sum(args)

    wrapped = support.FallbackOnFirstCall(broken, lambda: plain)
    assert wrapped(1, 2) == 3 and wrapped(3, 4) == 7
    assert calls == ["fast", "plain", "plain"]
    assert len(reasons) == 1 and "TypingError: cannot type this" in reasons[0]

    def other_error(*args):
        raise ValueError("a wrong input, not a compile failure")

    with pytest.raises(ValueError, match="a wrong input"):
        support.FallbackOnFirstCall(other_error, lambda: plain)(1)


@numba_only
@pytest.mark.compiles
def test_the_probe_passes_on_this_install():
    assert internals.missing() == []
    assert support.run_probe() == ""
