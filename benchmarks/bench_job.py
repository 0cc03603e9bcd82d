"""The whole seed experiment, end to end, against the same experiment written
by a PyTorch user and by a JAX user.

    python benchmarks/bench_job.py [--epochs 150] [--repeats 2] [--load N]
                                   [--runners ours,torch,jax]

Each run is a fresh process: ``scripts/train.py`` on a copy of
yaml/vae_mnist.yaml (``--epochs N``), ``benchmarks/peers/torch_vae_mnist.py``
and ``benchmarks/peers/jax_vae_mnist.py`` (same model, schedules, exact
monitoring of the three sets after every epoch, best model saved). The runs
are interleaved, the order turning each round, and each reports its wall
time (start-up included), its training seconds per epoch (median) and its
final objectives, which must agree within noise. ``--load N`` keeps N
CPU-bound processes running for the whole benchmark (a busy machine). A
runner whose library is not installed is left out, saying so. The data must
be installed (``scripts/download_binarized_mnist.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pylearn_vae.cli.common import program, say  # noqa: E402

RUNNERS = ("ours", "torch", "jax")
PEERS = {"torch": "torch_vae_mnist.py", "jax": "jax_vae_mnist.py"}


def _available(runner: str) -> bool:
    if runner == "ours":
        return True
    done = subprocess.run([sys.executable, "-c", f"import {runner}"], capture_output=True)
    return done.returncode == 0


def _ours(folder: Path, epochs: int) -> dict:
    from pylearn_vae.persistence.hdf5_file import read_tree, reading

    config = folder / "vae_mnist.yaml"
    shutil.copy(REPO / "yaml" / "vae_mnist.yaml", config)
    command = [sys.executable, str(REPO / "scripts" / "train.py"), str(config)]
    start = time.perf_counter()
    _child([*command, "--epochs", str(epochs), "--quiet"])
    wall = time.perf_counter() - start
    path = folder / "vae_mnist_checkpoint.h5"
    with reading(path, "checkpoint") as handle:
        channels = read_tree(handle["monitor"], str(path))["channels"]

    def last(name):
        return float(channels[name]["val_record"][-1])

    return {
        "wall": wall,
        # record k is taken at the end of epoch k; record 0 before training
        "epochs": [float(v) for v in channels["training_seconds_this_epoch"]["val_record"][1:]],
        "objectives": {s: last(f"{s}_objective") for s in ("train", "valid", "test")},
    }


def _peer(folder: Path, epochs: int, script: str) -> dict:
    command = [sys.executable, str(REPO / "benchmarks" / "peers" / script)]
    start = time.perf_counter()
    out = _child([*command, "--epochs", str(epochs), "--out", str(folder)], stdout=subprocess.PIPE)
    wall = time.perf_counter() - start
    result = json.loads(out.strip().splitlines()[-1].removeprefix("RESULT "))
    return {
        "wall": wall,
        "epochs": result["training_seconds_per_epoch"],
        "objectives": result["objectives"],
    }


def _child(command: list[str], stdout=None) -> str | None:
    """Run one timed program; its standard output (if captured). When this
    program is stopped, the child is asked to stop (SIGTERM: the training
    program then ends its own helpers) and is killed if it has not within
    ten seconds, so no run is left behind."""
    process = subprocess.Popen(command, stdout=stdout, text=True)
    try:
        out, _ = process.communicate()
    except BaseException:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)
    return out


def run_once(runner: str, epochs: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"bench_job_{runner}_"))
    try:
        if runner == "ours":
            return _ours(folder, epochs)
        return _peer(folder, epochs, PEERS[runner])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


#: A competing process: keeps one core busy, and ends by itself when its
#: parent (whose process id it is given: asking for it at start-up would
#: race with a parent killed meanwhile) is gone, even killed by SIGKILL, when
#: no ``finally`` runs.
_LOAD = "import os, sys\nparent = int(sys.argv[1])\nwhile os.getppid() == parent:\n    pass\n"


def start_load(n: int, load: list[subprocess.Popen]) -> None:
    """Start ``n`` processes that keep one core busy each, appending each to
    ``load`` as it starts (a stop while they start still finds them)."""
    for _ in range(n):
        load.append(subprocess.Popen([sys.executable, "-c", _LOAD, str(os.getpid())]))


def _row(runner: str, result: dict) -> str:
    obj = result["objectives"]
    return (
        f"| {runner} | {result['wall']:.1f} | {statistics.median(result['epochs']):.2f} | "
        f"{obj['train']:.2f} | {obj['valid']:.2f} | {obj['test']:.2f} |"
    )


@program
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--load", type=int, default=0, help="competing CPU-bound processes")
    p.add_argument("--runners", default=",".join(RUNNERS), help="any of ours,torch,jax")
    args = p.parse_args(argv)
    runners = [r.strip() for r in args.runners.split(",") if r.strip()]
    unknown = [r for r in runners if r not in RUNNERS]
    most = 4 * (os.cpu_count() or 1)
    if unknown or not runners or args.epochs < 1 or args.repeats < 1 or not 0 <= args.load <= most:
        say(
            f"error: give --runners from ours,torch,jax, positive --epochs and --repeats, "
            f"and --load from 0 to {most} (4 per CPU)",
            file=sys.stderr,
        )
        return 2
    for runner in [r for r in runners if not _available(r)]:
        say(f"{runner}: not installed, left out (pip install {runner})", file=sys.stderr)
        runners.remove(runner)
    if not runners:
        say("error: none of the runners asked for is installed", file=sys.stderr)
        return 2
    results: dict[str, list[dict]] = {r: [] for r in runners}
    load: list[subprocess.Popen] = []
    try:
        start_load(args.load, load)
        say(
            f"{args.epochs} epochs, {args.repeats} rounds, {args.load} competing process(es), "
            f"{os.cpu_count()} CPUs",
            flush=True,
        )
        say("| run | wall (s) | training s/epoch (median) | train | valid | test |")
        say("|---|---|---|---|---|---|")
        for round_ in range(args.repeats):
            order = runners[round_ % len(runners) :] + runners[: round_ % len(runners)]
            for runner in order:
                try:
                    result = run_once(runner, args.epochs)
                except subprocess.CalledProcessError as exc:
                    say(
                        f"error: the {runner} run failed (exit status {exc.returncode})",
                        file=sys.stderr,
                    )
                    return 1
                results[runner].append(result)
                say(_row(runner, result), flush=True)
    finally:
        for process in load:
            process.kill()
            process.wait()
    if "ours" in results:
        for peer in [r for r in runners if r != "ours"]:
            walls = [o["wall"] / q["wall"] for o, q in zip(results["ours"], results[peer])]
            steps = [
                statistics.median(o["epochs"]) / statistics.median(q["epochs"])
                for o, q in zip(results["ours"], results[peer])
            ]
            say(
                f"ours / {peer}: wall {', '.join(f'{w:.2f}' for w in walls)}; "
                f"training per epoch {', '.join(f'{s:.2f}' for s in steps)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
