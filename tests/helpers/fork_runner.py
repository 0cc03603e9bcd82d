"""Run many invocations of the programs, each in its own forked process under
memory, CPU and wall-time limits.

    python -m tests.helpers.fork_runner PLAN.json RESULTS.json

``PLAN.json`` is a list of ``{"name", "program", "argv", "cwd"}``; ``program``
is a key of :data:`PROGRAMS`. The runner imports every program once, then
forks a child per invocation: the child sets its limits (address space: what
the runner maps plus ``--memory`` MiB; CPU seconds), sends its output to
files and calls the program's ``main(argv)``, as ``python scripts/X.py argv``
would, then ends with its exit status. The runner kills a child that runs
past ``--seconds`` of wall time and records it as hung. ``RESULTS.json``
holds, per invocation, the exit status (or the signal that ended it), the
seconds it took and its output. Forking after the imports makes hundreds of
real processes cheap (the programs' start-up import is paid once).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import resource
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from tests.helpers.paths import REPO

PROGRAMS = {
    "train": "pylearn_vae.cli.train:main",
    "evaluate": "pylearn_vae.cli.evaluate:main",
    "show_samples": "pylearn_vae.cli.show_samples:main",
    "print_monitor": "pylearn_vae.cli.plot_monitor:print_main",
    "plot_monitor": "pylearn_vae.cli.plot_monitor:main",
    "migrate_yaml": "pylearn_vae.cli.migrate_yaml:main",
    "sweep": "pylearn_vae.cli.sweep:main",
    "download": "pylearn_vae.cli.download_binarized_mnist:main",
    "nll_curve": "benchmarks/nll_curve.py:main",
}

#: The exit status of a child whose program raised instead of returning.
RAISED = 70


def _main_of(spec: str):
    where, name = spec.split(":")
    if where.endswith(".py"):
        loaded = importlib.util.spec_from_file_location(Path(where).stem, REPO / where)
        module = importlib.util.module_from_spec(loaded)
        loaded.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    return getattr(module, name)


def _mapped_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _child(main, case: dict, out: str, err: str, memory: int, cpu: int) -> None:
    """In the forked process: never returns."""
    code = RAISED
    try:
        os.chdir(case["cwd"])
        for fd, path in ((1, out), (2, err)):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        resource.setrlimit(resource.RLIMIT_AS, (_mapped_bytes() + memory, resource.RLIM_INFINITY))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        sys.argv = [case["program"], *case["argv"]]
        code = main(case["argv"])
        code = 0 if code is None else int(code)
    except SystemExit as exc:  # (argparse, or a program's own exit)
        if isinstance(exc.code, int) or exc.code is None:
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001  (what escaped the program is the finding)
        traceback.print_exc()
        code = RAISED
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _wait(pid: int, seconds: float) -> tuple[int | None, int | None, bool]:
    """(exit status, killing signal, hung) of child ``pid``, killed after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None, signal.SIGKILL, True
        time.sleep(0.005)
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status), False
    return os.WEXITSTATUS(status), None, False


def run_plan(plan: list[dict], memory: int, cpu: int, seconds: float) -> list[dict]:
    mains = {name: _main_of(PROGRAMS[name]) for name in {case["program"] for case in plan}}
    results = []
    with tempfile.TemporaryDirectory(prefix="fork-runner-") as folder:
        out, err = os.path.join(folder, "out"), os.path.join(folder, "err")
        for case in plan:
            sys.stdout.flush()
            sys.stderr.flush()
            start = time.monotonic()
            pid = os.fork()
            if pid == 0:
                _child(mains[case["program"]], case, out, err, memory, cpu)
            code, killed_by, hung = _wait(pid, seconds)
            results.append(
                {
                    "name": case["name"],
                    "program": case["program"],
                    "argv": case["argv"],
                    "code": code,
                    "signal": killed_by,
                    "hung": hung,
                    "seconds": round(time.monotonic() - start, 3),
                    "stdout": Path(out).read_text(errors="replace")[-20_000:],
                    "stderr": Path(err).read_text(errors="replace")[-20_000:],
                }
            )
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("plan")
    p.add_argument("results")
    p.add_argument("--memory", type=int, default=2048, help="MiB a child may map beyond the runner")
    p.add_argument("--cpu", type=int, default=60, help="CPU seconds per child")
    p.add_argument("--seconds", type=float, default=60.0, help="wall seconds per child")
    args = p.parse_args(argv)
    plan = json.loads(Path(args.plan).read_text())
    results = run_plan(plan, args.memory << 20, args.cpu, args.seconds)
    Path(args.results).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
