"""Whether this process compiles Numba graphs with the package's speed-ups.

The speed-ups (:mod:`pylearn_vae.speedups.numba_math`, the positional linker of
:mod:`pylearn_vae.speedups.numba_linker`) were built against particular PyTensor
and Numba releases. Before a Numba mode gets them, :func:`speedups_enabled`
checks, once per process, that

1. the user has not turned them off (``PYLEARN_VAE_NUMBA_SPEEDUPS=0``);
2. every PyTensor and Numba internal they use is where they expect it
   (:func:`pylearn_vae.speedups.internals.missing`);
3. a small probe graph that goes through every speed-up compiles and gives
   the numbers NumPy gives. A success is remembered in PyTensor's compile
   directory for this exact set of versions and this package's source, so
   only the first processes of an installation (until one passes) run it.

The probe runs in a second process (:class:`_BackgroundProbe`) while this
one goes on building and compiling with the speed-ups: on two cores its
cost, about ten seconds of Numba compiling, is hidden. The verdict is
awaited by each compiled function's first call (:class:`FallbackOnFirstCall`)
before that call's results are returned; if the probe failed, the call is
undone (the shared variables it updated get their values back) and made
again with PyTensor's own code. The same happens when that first call
raises anything while the verdict is pending and the verdict is bad.

If a check fails, or a graph compiled with the speed-ups later fails to
compile (see :func:`pylearn_vae.speedups.compile_function`), the process
warns once with :class:`SpeedupsUnavailableWarning`, saying why, and
compiles with PyTensor's own Numba code from then on: slower, never broken.
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

from pylearn_vae.errors import SpeedupsUnavailableWarning
from pylearn_vae.speedups import internals
from pylearn_vae.utils.modes import with_rewrites

__all__ = [
    "SpeedupsUnavailableWarning",
    "available",
    "speedups_enabled",
    "disable_speedups",
    "speedup_mode",
    "uses_speedups",
    "plain_mode",
    "with_fallback",
    "FallbackOnFirstCall",
    "innermost",
    "probe_pending",
    "settle",
    "run_probe",
    "probe_marker",
    "start_helper",
    "track_helper",
    "untrack_helper",
    "installation_fingerprint",
    "same_installation",
    "ENV_VARIABLE",
]

#: Set to ``0`` to compile with PyTensor's own Numba code only.
ENV_VARIABLE = "PYLEARN_VAE_NUMBA_SPEEDUPS"


class _Decision:
    """The process's one decision, made at first use (a lock: monitors and
    steps may be compiled from more than one thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.enabled: bool | None = None
        self.reason = ""
        #: A probe still running in the background: ``enabled`` is then
        #: True until its verdict says otherwise.
        self.pending: _BackgroundProbe | None = None
        #: Held by the one thread that waits for ``pending``'s verdict.
        self.settling = threading.Lock()


_DECISION = _Decision()

#: The speed-ups, other than the Numba backend's, whose absence was reported.
_REPORTED: set[str] = set()


def available(speedup: str) -> bool:
    """Whether every PyTensor and Numba internal ``speedup`` (a key of
    :data:`pylearn_vae.speedups.internals.SPEEDUPS`) needs is here; if not,
    warn once per process and speed-up, naming what is missing."""
    absent = internals.missing(speedup=speedup)
    if absent and speedup not in _REPORTED:
        _REPORTED.add(speedup)
        warnings.warn(
            f"pylearn_vae's speed-up '{internals.SPEEDUPS[speedup]}' is off: this "
            f"installation lacks {', '.join(absent)}. PyTensor's own code runs instead "
            "(correct, slower). Please report this with the versions of PyTensor and Numba.",
            SpeedupsUnavailableWarning,
            stacklevel=2,
        )
    return not absent


def disable_speedups(reason: str) -> None:
    """Compile without the speed-ups from now on in this process, warning once with ``reason``."""
    with _DECISION.lock:
        already_off = _DECISION.enabled is False
        _DECISION.enabled, _DECISION.reason = False, reason
        probe, _DECISION.pending = _DECISION.pending, None
    if probe is not None:
        probe.cancel()
    if not already_off:
        warnings.warn(
            f"pylearn_vae's Numba speed-ups are off: {reason}. Training and evaluation "
            "use PyTensor's own Numba code (correct, slower). Please report this with "
            "the versions of PyTensor and Numba; set PYLEARN_VAE_NUMBA_SPEEDUPS=0 to "
            "skip the speed-ups without this warning.",
            SpeedupsUnavailableWarning,
            stacklevel=3,
        )


def speedups_enabled() -> bool:
    """Whether Numba modes get the speed-ups in this process (decided at the first call).

    While the probe runs in the background this says True; :func:`settle`
    waits for its verdict."""
    if os.environ.get(ENV_VARIABLE, "1") == "0":
        return False
    with _DECISION.lock:
        if _DECISION.enabled is not None:
            return _DECISION.enabled
    reason, probe = _why_unusable()
    if reason:
        disable_speedups(reason)
        return False
    with _DECISION.lock:
        if _DECISION.enabled is None:
            _DECISION.enabled, _DECISION.pending = True, probe
            probe = None
        enabled = _DECISION.enabled
    if probe is not None:  # another thread decided first
        probe.cancel()
    return enabled


def probe_pending() -> bool:
    """Whether the speed-ups are in use before the probe's verdict is in."""
    with _DECISION.lock:
        return _DECISION.pending is not None


def settle() -> bool:
    """Wait for the background probe's verdict, if one is awaited, and return
    whether the speed-ups stay on (a failed probe turns them off, with the warning)."""
    with _DECISION.settling:
        with _DECISION.lock:
            probe = _DECISION.pending
        if probe is not None:
            problem = probe.verdict()
            if problem:  # off before the probe stops being pending
                disable_speedups(problem)
            else:
                with _DECISION.lock:
                    if _DECISION.pending is probe:
                        _DECISION.pending = None
    return speedups_enabled()


def speedup_mode(mode):
    """``mode`` (a Numba mode) with the positional linker and the speed-up
    rewrites added once; ``mode`` itself where its parts cannot be copied
    (:func:`pylearn_vae.speedups.internals.mode_with`)."""
    from pylearn_vae.speedups import numba_math
    from pylearn_vae.speedups.numba_linker import PositionalNumbaLinker, positional_numba_linker

    if not isinstance(mode.linker, PositionalNumbaLinker):
        linker = positional_numba_linker(mode.linker)
        positional = None if linker is None else internals.mode_with(mode, linker=linker)
        if positional is None:
            return mode
        mode = positional
    return with_rewrites(mode, numba_math.NUMBA_REWRITES)


def uses_speedups(mode) -> bool:
    """Whether ``mode`` was made by :func:`speedup_mode`."""
    # Not imported here: it needs PyTensor's Numba linker, which may have
    # moved, and no mode has the positional linker before it is imported.
    linkers = sys.modules.get("pylearn_vae.speedups.numba_linker")
    return linkers is not None and isinstance(mode.linker, linkers.PositionalNumbaLinker)


def plain_mode(mode):
    """``mode`` without what :func:`speedup_mode` added: PyTensor's own Numba code."""
    if not uses_speedups(mode):
        return mode
    from pylearn_vae.speedups import numba_math

    ours = {id(rewrite) for rewrite, _ in numba_math.NUMBA_REWRITES}
    query = internals.rewrite_query(mode)
    linker = internals.linker_as(mode.linker, internals.get("NumbaLinker"))
    plain = None
    if query is not None and linker is not None:
        query = copy.copy(query)
        query.extra_rewrites = [item for item in query.extra_rewrites if id(item[0]) not in ours]
        plain = internals.mode_with(mode, linker=linker, query=query)
    if plain is None:  # (speedup_mode read the same parts: not expected)
        from pytensor.compile.mode import get_mode

        return get_mode("NUMBA")
    return plain


def _is_numba_failure(exc: BaseException) -> bool:
    error = internals.find("NumbaError")
    return error is not None and isinstance(exc, error)


def _describe(exc: BaseException) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"Numba could not compile a graph with them ({type(exc).__name__}: {first_line})"


def with_fallback(build_fast, build_plain):
    """``build_fast()`` wrapped in :class:`FallbackOnFirstCall`, or ``build_plain()``
    if building with the speed-ups already fails in Numba."""
    if not speedups_enabled():  # turned off since the mode was made
        return build_plain()
    try:
        compiled = build_fast()
    except Exception as exc:
        if not _is_numba_failure(exc):
            raise
        disable_speedups(_describe(exc))
        return build_plain()
    return FallbackOnFirstCall(compiled, build_plain)


def innermost(function):
    """The PyTensor function inside this package's wrappers of a compiled
    function (:class:`FallbackOnFirstCall` and the others each keep the
    function they wrap as their own ``function`` attribute)."""
    while "function" in getattr(function, "__dict__", {}):
        function = function.__dict__["function"]
    return function


class FallbackOnFirstCall:
    """A function compiled with the speed-ups that is rebuilt with PyTensor's
    own Numba code if, at its first call, Numba fails to compile it or the
    background probe's verdict turns the speed-ups off.

    Numba compiles a graph when it is first called with concrete types, so
    an incompatibility between the speed-ups and a PyTensor or Numba they
    were not built for shows only then. A failed compile runs nothing, so
    calling the rebuilt function with the same arguments is safe. A call
    made before the probe's verdict is in is undone if the verdict is bad:
    the shared variables the function updates are copied before the call
    and restored before the call is made again. Every other attribute is
    the compiled function's.
    """

    def __init__(self, compiled, rebuild) -> None:
        self.function = compiled
        self._rebuild = rebuild

    def __call__(self, *args, **kwargs):
        if self._rebuild is None:
            return self.function(*args, **kwargs)
        if not speedups_enabled():  # turned off since this was built
            return self._fall_back(*args, **kwargs)
        saved = None
        if probe_pending():
            saved = _updated_values(self.function)
            if saved is None and not settle():  # a call that cannot be undone waits
                return self._fall_back(*args, **kwargs)
        try:
            result = self.function(*args, **kwargs)
        except Exception as exc:
            if _is_numba_failure(exc):
                disable_speedups(_describe(exc))
            elif saved is None or self._keeps_speedups(saved):
                raise  # not the speed-ups' doing
            if saved is not None:  # a failed compile ran nothing; restore anyway
                _restore(saved)
            return self._fall_back(*args, **kwargs)
        if saved is not None and not self._keeps_speedups(saved):
            _restore(saved)
            return self._fall_back(*args, **kwargs)
        self._rebuild = None
        return result

    @staticmethod
    def _keeps_speedups(saved: list) -> bool:
        """The probe's verdict; whatever stops the wait also undoes the call."""
        try:
            return settle()
        except BaseException:
            _restore(saved)
            raise

    def _fall_back(self, *args, **kwargs):
        cancel = getattr(self.function, "cancel", None)
        if callable(cancel):  # code compiling elsewhere for the function now replaced
            cancel()
        self.function = self._rebuild()
        self._rebuild = None
        return self.function(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.function, name)


def _updated_values(function) -> list | None:
    """The shared variables ``function`` updates, each with a copy of its
    value; None where they are not found (the call cannot be undone)."""
    specs = internals.input_specs(function)
    if specs is None:
        return None
    return [
        (spec.variable, spec.variable.get_value(borrow=False))
        for spec in specs
        if spec.update is not None and hasattr(spec.variable, "get_value")
    ]


def _restore(saved: list) -> None:
    for variable, value in saved:
        variable.set_value(value, borrow=True)


# -- the checks ---------------------------------------------------------------
def _why_unusable() -> tuple[str, _BackgroundProbe | None]:
    """What rules the speed-ups out now ('' if nothing), and the probe still
    running in the background whose verdict is to be awaited (or None)."""
    absent = internals.missing(speedup="numba")
    if absent:
        return f"this PyTensor lacks {', '.join(absent)}", None
    marker = probe_marker()
    if marker is not None and marker.exists():
        return "", None
    probe = _BackgroundProbe.start(marker)
    if probe is not None:
        return "", probe
    return _probe_here(marker), None


def _probe_here(marker: Path | None) -> str:
    """Run the probe in this process; record a pass at ``marker``."""
    try:
        problem = run_probe()
    except Exception as exc:  # any failure means the speed-ups do not fit
        first_line = (str(exc).strip().splitlines() or [""])[0]
        problem = f"a probe graph failed to compile or run ({type(exc).__name__}: {first_line})"
    if not problem and marker is not None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            partial = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
            partial.write_text("ok\n")
            os.replace(partial, marker)
        except OSError:
            pass  # the probe runs again in the next process
    return problem


#: What the background probe's process runs: the probe, then one line with
#: the verdict. (A test replaces it to make the probe fail.)
_PROBE_CODE = (
    "import sys\n"
    "from pathlib import Path\n"
    "from pylearn_vae.speedups.support import _probe_here, same_installation\n"
    "if not same_installation(sys.argv[1]):\n"
    "    print('PROBE-ELSEWHERE', flush=True)\n"
    "    raise SystemExit(0)\n"
    "marker = Path(sys.argv[2]) if len(sys.argv) > 2 else None\n"
    "problem = _probe_here(marker)\n"
    "print('PROBE-FAILED ' + problem if problem else 'PROBE-PASSED', flush=True)\n"
)

#: Signals that stop a process from outside (not a crash of its own).
_STOP_SIGNALS = {
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGKILL", "SIGHUP", "SIGQUIT")
    if hasattr(signal, name)
}

#: Seconds to wait for the probe's verdict before giving up on the speed-ups.
PROBE_SECONDS = 600


class _BackgroundProbe:
    """The probe running in a child process (see :func:`start_helper`)."""

    def __init__(self, process: subprocess.Popen, marker: Path | None) -> None:
        self.process = process
        self.marker = marker
        self.owner = os.getpid()
        self._reading = threading.Lock()  # one reader of the pipes at a time

    @classmethod
    def start(cls, marker: Path | None) -> _BackgroundProbe | None:
        """Start the probe; None if no child process can be started here."""
        args = [installation_fingerprint()] + ([str(marker)] if marker else [])
        process = start_helper(_PROBE_CODE, args)
        if process is None:
            return None
        probe = cls(process, marker)
        track_helper(probe)
        return probe

    def verdict(self) -> str:
        """Wait for the probe to end; what is wrong ('' if nothing)."""
        if os.getpid() != self.owner:  # a forked copy of the process: not our child
            return _probe_here(probe_marker())
        with self._reading:
            try:
                out, err = self.process.communicate(timeout=PROBE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()
                untrack_helper(self)
                return f"the probe did not finish in {PROBE_SECONDS} s"
            except BaseException:
                self.process.kill()
                self.process.communicate()
                untrack_helper(self)
                raise
        untrack_helper(self)
        lines = out.strip().splitlines()
        last = lines[-1] if lines else ""
        if last == "PROBE-PASSED":
            return ""
        if last.startswith("PROBE-FAILED "):
            return last[len("PROBE-FAILED ") :]
        if last == "PROBE-ELSEWHERE" or -self.process.returncode in _STOP_SIGNALS:
            # The child imported other packages than this process, or it was
            # stopped from outside: it says nothing about the speed-ups here,
            # so probe here. (A crash, such as a segmentation fault, does.)
            return _probe_here(self.marker)
        said = (err.strip().splitlines() or ["nothing on stderr"])[-1]
        return f"the probe's process ended with code {self.process.returncode} ({said})"

    def cancel(self) -> None:
        """Stop the probe if it still runs (its verdict is no longer needed)."""
        untrack_helper(self)
        if os.getpid() != self.owner:
            return
        if self.process.poll() is None:
            self.process.kill()
        if self._reading.acquire(blocking=False):  # else a verdict() reads (and reaps)
            try:
                self.process.communicate()
            finally:
                self._reading.release()


def installation_fingerprint() -> str:
    """Where this process's PyTensor, Numba and package come from, and their versions."""
    import numba
    import numpy
    import pytensor

    import pylearn_vae

    return "|".join(
        [sys.version]
        + [
            f"{m.__name__}={m.__version__}@{Path(m.__file__).resolve()}"
            for m in (pytensor, numba, numpy)
        ]
        + [str(Path(pylearn_vae.__file__).resolve())]
    )


def same_installation(fingerprint: str) -> bool:
    """In a helper process: whether it runs what its parent runs."""
    return installation_fingerprint() == fingerprint


#: The environment variable that gives a helper its parent's process id.
_PARENT_VARIABLE = "PYLEARN_VAE_HELPER_PARENT"

#: Run first in every helper: a thread that ends the helper when its parent
#: is gone (killed by SIGKILL, when no cleanup of the parent's runs), so that
#: no compile or probe goes on for minutes, orphaned. The parent's id comes
#: from the parent: asking at start-up would race with its death.
_ENDS_WITH_PARENT = f"""
def _end_with_parent():
    import os, threading, time
    parent = int(os.environ.pop({_PARENT_VARIABLE!r}))
    def watch():
        while os.getppid() == parent:
            time.sleep(0.25)
        os._exit(1)
    threading.Thread(target=watch, name="ends-with-parent", daemon=True).start()
_end_with_parent()
del _end_with_parent
"""


def start_helper(code: str, args: list[str], output: bool = True) -> subprocess.Popen | None:
    """Run ``code`` in a child Python: this interpreter, this process's
    import path (so the same packages; :func:`same_installation` checks it),
    working folder, PyTensor compile folder and Numba settings, in a session
    of its own (a Ctrl-C at the terminal is for this process, not the child).
    ``output``: capture its output as text (else it is dropped). The child
    ends by itself within a second of this process's end, however it ended.
    None if no child process can be started here."""
    import pytensor

    if getattr(sys, "frozen", False) or not sys.executable:
        return None
    env = dict(os.environ)
    # The parent's import path, made absolute; ``-P`` keeps the child's
    # working folder off it (another copy of the package could be there).
    env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in sys.path if p)
    env["PYTHONIOENCODING"] = "utf-8"
    flags = {
        "base_compiledir": os.path.abspath(pytensor.config.base_compiledir),
        "compiledir_format": pytensor.config.compiledir_format,
        "numba__fastmath": str(pytensor.config.numba__fastmath),
        "numba__cache": str(pytensor.config.numba__cache),
        "floatX": pytensor.config.floatX,
    }
    quoted = ",".join(f"{name}={shlex.quote(value)}" for name, value in flags.items())
    env["PYTENSOR_FLAGS"] = ",".join(f for f in (env.get("PYTENSOR_FLAGS", ""), quoted) if f)
    if env.get("NUMBA_CACHE_DIR"):
        env["NUMBA_CACHE_DIR"] = os.path.abspath(env["NUMBA_CACHE_DIR"])
    env[_PARENT_VARIABLE] = str(os.getpid())
    pipe = subprocess.PIPE if output else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, "-P", "-c", _ENDS_WITH_PARENT + code, *args],
            stdin=subprocess.DEVNULL,
            stdout=pipe,
            stderr=pipe,
            env=env,
            encoding="utf-8" if output else None,
            errors="replace" if output else None,
            start_new_session=True,
        )
    except (OSError, ValueError, TypeError):
        return None


#: Helper processes still running (anything with a ``cancel()``: probes,
#: compiles elsewhere); ended when this process exits, since a helper left
#: to run would outlive a short command (a probe then runs again next time).
_RUNNING: set = set()


def track_helper(helper) -> None:
    """End ``helper`` (its ``cancel()``) if it still runs when this process exits."""
    _RUNNING.add(helper)


def untrack_helper(helper) -> None:
    """``helper`` is done or ended: nothing to do for it at exit."""
    _RUNNING.discard(helper)


@atexit.register
def _cancel_running() -> None:
    for helper in list(_RUNNING):
        helper.cancel()


def _reset_after_fork() -> None:
    # A lock held by another thread at the fork would never be released here.
    _DECISION.lock = threading.Lock()
    _DECISION.settling = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def probe_marker() -> Path | None:
    """Where a passed probe is remembered: one file per versions + source."""
    try:
        import llvmlite
        import numba
        import numpy
        import pytensor
    except ImportError:
        return None
    digest = hashlib.sha256()
    for part in (
        sys.version,
        pytensor.__version__,
        numba.__version__,
        llvmlite.__version__,
        numpy.__version__,
        str(pytensor.config.numba__fastmath),
    ):
        digest.update(part.encode() + b"\0")
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return Path(pytensor.config.compiledir) / "pylearn_vae_probe" / f"{digest.hexdigest()}.ok"


def run_probe() -> str:
    """Compile one graph that uses every speed-up; return what is wrong ('' if nothing)."""
    import numpy as np
    import pytensor
    import pytensor.tensor as pt
    from pytensor.compile.mode import get_mode

    from pylearn_vae.utils.rng import SymbolicRNG, rng_updates

    x = pt.matrix("x", dtype="float32")
    s = pt.scalar("s", dtype="float32")
    noise = SymbolicRNG(seed=0).uniform(x.shape, dtype="float32")
    outputs = [
        # a fused loop of the vectorised functions (an inlined composite)
        pt.softplus(x) * s + pt.sigmoid(x) - pt.log1p(pt.exp(-abs(x))) + pt.sqrt(x * x + 1),
        # a transpose into a matrix product, and an expand/squeeze
        pt.dot(x.T, pt.exp(x - 1)) + x.sum(axis=0)[:, None],
        # 0-d arithmetic (a composite outside any loop on some PyTensors)
        pt.log(s + 1) * pt.sqrt(s + 2) / (s + 3),
        # a reduction of a fused loop, and a random draw
        (pt.sigmoid(x) * noise).mean(),
        noise,
    ]
    mode = speedup_mode(get_mode("NUMBA"))
    fn = pytensor.function([x, s], outputs, updates=list(rng_updates(outputs).items()), mode=mode)
    xv = np.linspace(-3, 3, 35, dtype="float32").reshape(7, 5)
    sv = np.float32(0.75)
    got = fn(xv, sv)
    xd, sd = xv.astype("float64"), float(sv)
    noise_value = np.asarray(got[4], dtype="float64")
    sig = 1 / (1 + np.exp(-xd))
    expected = [
        np.logaddexp(0, xd) * sd + sig - np.log1p(np.exp(-abs(xd))) + np.sqrt(xd * xd + 1),
        xd.T @ np.exp(xd - 1) + xd.sum(axis=0)[:, None],
        np.log(sd + 1) * np.sqrt(sd + 2) / (sd + 3),
        (sig * noise_value).mean(),
    ]
    for k, (value, reference) in enumerate(zip(got, expected)):
        value = np.asarray(value)
        if value.dtype != np.float32 or not np.allclose(value, reference, rtol=1e-4, atol=1e-5):
            return f"the probe graph's output {k} differs from NumPy's"
    if not (noise_value.shape == xv.shape and 0 <= noise_value.min() and noise_value.max() < 1):
        return "the probe graph's random draw is out of range"
    return ""
