"""What a test needs, said by its markers and checked (a pytest plugin).

Each test carries a marker for each thing it needs beyond the in-process
tier (pyproject.toml lists them): ``subprocess`` (real processes),
``cold_cache`` (empty compile caches), ``network`` (a server on 127.0.0.1),
``ray`` (the sweep extra); ``compiles`` says it compiles a PyTensor graph,
so its outcome may change with the backend or Python. ``slow`` is derived:
a test that needs a process, an empty cache or Ray is outside the
in-process tier (``-m "not slow"``) whatever else it says.

With ``PYLEARN_VAE_CHECK_NEEDS=1`` (CI's full pass sets it) a test that
compiles a graph, starts a process, binds a socket or imports Ray without
the marker for it fails, so that the passes which select by marker (the
other Python, the C backend, the speed-ups switched off) lose no test.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing.process
import os
import socket
import subprocess
import sys
import time

import pytest

#: Markers that put a test outside the in-process tier.
OUTSIDE_THE_TIER = ("subprocess", "cold_cache", "ray")

ENV_VARIABLE = "PYLEARN_VAE_CHECK_NEEDS"

#: A file to which each test's needs are appended as a JSON line instead
#: (for marking a suite; nothing fails).
RECORD_VARIABLE = "PYLEARN_VAE_RECORD_NEEDS"

_CHECKING = pytest.StashKey[bool]()

#: What the running test or fixture did, by need (reset before each).
_SEEN: set[str] = set()

#: Fixture name -> what its set-up did: a test using a fixture that compiled
#: a graph depends on the backend as much as one that compiles itself.
_FIXTURE_NEEDS: dict[str, set[str]] = {}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by the derived marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if isinstance(item, pytest.DoctestItem):
            # A docstring's example cannot carry a marker; several evaluate a
            # graph, and all are quick: every one counts as compiling.
            item.add_marker(pytest.mark.compiles)
        if any(item.get_closest_marker(name) for name in OUTSIDE_THE_TIER):
            if item.get_closest_marker("slow") is None:
                item.add_marker(pytest.mark.slow)


#: Short-lived system tools that libraries run on their own (ctypes looking
#: for a library, PyTensor's C backend calling its compiler and running its
#: one-off ``try_march`` probe): not a test's real process.
_TOOLS = frozenset({"ldconfig", "gcc", "g++", "cc", "c++", "ld", "uname"})


def _is_tool(args, kwargs) -> bool:
    argv = args[1] if len(args) > 1 else kwargs.get("args")
    first = argv if isinstance(argv, (str, bytes, os.PathLike)) else (argv or [""])[0]
    name = os.path.basename(os.fsdecode(first).split()[0] if first else "")
    return name in _TOOLS or name.startswith("try_march")


#: Set while the speed-ups start a helper process of their own (the probe,
#: a compile in a second process): those run only on a cold cache and are
#: the speed machinery's business, not a need of the test.
_IN_SPEEDUP_HELPER: list[bool] = [False]


def _watch(owner, name: str, need: str) -> None:
    original = getattr(owner, name)

    def watched(*args, **kwargs):
        tool = need == "subprocess" and owner is subprocess.Popen and _is_tool(args, kwargs)
        # (A Unix socket is a file, not the network.)
        local = need == "network" and args and args[0].family == socket.AF_UNIX
        if not (tool or local or _IN_SPEEDUP_HELPER[0]):
            _SEEN.add(need)
        return original(*args, **kwargs)

    watched.__wrapped__ = original
    setattr(owner, name, watched)


def pytest_configure(config):
    if os.environ.get(ENV_VARIABLE, "") != "1" and not os.environ.get(RECORD_VARIABLE):
        return
    from pytensor.compile.maker import FunctionMaker

    _watch(FunctionMaker, "__init__", "compiles")
    _watch(subprocess.Popen, "__init__", "subprocess")
    _watch(multiprocessing.process.BaseProcess, "start", "subprocess")
    # (urllib3's import binds ::1 to learn whether IPv6 works: imported
    # here, that probe is no test's need; MLflow and Ray import urllib3.)
    with contextlib.suppress(ImportError):
        import urllib3.util.connection  # noqa: F401
    _watch(socket.socket, "bind", "network")
    from pylearn_vae.speedups import support

    start_helper = support.start_helper

    def helper(*args, **kwargs):
        _IN_SPEEDUP_HELPER[0] = True
        try:
            return start_helper(*args, **kwargs)
        finally:
            _IN_SPEEDUP_HELPER[0] = False

    support.start_helper = helper
    config.stash[_CHECKING] = True


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    outer = set(_SEEN)
    _SEEN.clear()
    yield
    if _SEEN:
        _FIXTURE_NEEDS.setdefault(fixturedef.argname, set()).update(_SEEN)
    _SEEN.update(outer)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _SEEN.clear()
    item.stash[_RAY_BEFORE] = "ray" in sys.modules
    item.stash[_STARTED] = time.perf_counter()
    yield


_RAY_BEFORE = pytest.StashKey[bool]()
_STARTED = pytest.StashKey[float]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """After the teardown of a test that passed: fail it if it did what its
    markers do not say (directly or through a fixture it uses)."""
    outcome = yield
    report = outcome.get_result()
    if call.when != "teardown" or not item.config.stash.get(_CHECKING, False):
        return
    seen = set(_SEEN)
    for name in item.fixturenames:
        seen |= _FIXTURE_NEEDS.get(name, set())
    if not item.stash.get(_RAY_BEFORE, True) and "ray" in sys.modules:
        seen.add("ray")
    missing = sorted(need for need in seen if item.get_closest_marker(need) is None)
    record = os.environ.get(RECORD_VARIABLE)
    if record:
        with open(record, "a", encoding="utf-8") as stream:
            markers = sorted({mark.name for mark in item.iter_markers()})
            seconds = round(time.perf_counter() - item.stash.get(_STARTED, 0.0), 3)
            line = {"id": item.nodeid, "needs": sorted(seen), "markers": markers, "s": seconds}
            stream.write(json.dumps(line) + "\n")
        return
    if missing and not report.failed:
        marks = " ".join(f"@pytest.mark.{need}" for need in missing)
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} needs what its markers do not say: add {marks} "
            "(tests/needs.py explains the markers)"
        )
