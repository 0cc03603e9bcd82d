"""What a Ray Tune sweep costs on top of its trials' own training.

    python benchmarks/bench_sweep.py [--trials 4] [--epochs 3] [--train-rows 10000]

Runs the seed YAML (``yaml/vae_mnist.yaml``, with the training set cut to
``--train-rows`` and the monitoring sets to 2,000 rows each) in two ways in
the same run: once with ``scripts/train.py`` alone, then as a sweep of
``--trials`` trials differing only by ``model.seed`` (FIFO scheduler, no
early stopping) on a local Ray instance with one trial per core. Prints Ray's
start-up, the per-node data check, each trial's wall time as the driver sees
it against the time inside the trial and its SGD passes alone, and the core
time per trial (the trials' wall time times the cores they ran on, divided
by the number of trials) against the lone ``train.py`` run. Both use the
compiled functions cached by an untimed ``train.py --epochs 1`` run, and
one BLAS thread.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's package, here and in the Ray workers


def subset_yaml(train_rows: int) -> str:
    text = (REPO / "yaml" / "vae_mnist.yaml").read_text()
    text = text.replace("which_set: 'train',", f"which_set: 'train', stop: {train_rows},")
    text = text.replace("which_set: 'valid',", "which_set: 'valid', stop: 2000,")
    return text.replace("which_set: 'test',", "which_set: 'test', shuffle: True, stop: 2000,")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-rows", type=int, default=10000)
    args = parser.parse_args(argv)

    from pylearn_vae.sweep import load_spec
    from pylearn_vae.sweep.runner import run_sweep, worker_env

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as folder:
        folder = Path(folder)
        (folder / "base.yaml").write_text(subset_yaml(args.train_rows))
        # One BLAS thread, as in a trial: the comparison is per core.
        env = dict(os.environ, PYTHONPATH=str(REPO), **worker_env(1))
        train = [sys.executable, str(REPO / "scripts" / "train.py"), str(folder / "base.yaml")]
        # Untimed: compiles the functions into ~/.pytensor, which the timed
        # run and the sweep's trials then load alike.
        subprocess.run([*train, "--epochs", "1"], env=env, check=True, capture_output=True)
        start = time.monotonic()
        subprocess.run(
            [*train, "--epochs", str(args.epochs), "--quiet", "--restart"],
            env=env,
            check=True,
            capture_output=True,
        )
        alone = time.monotonic() - start
        seeds = ", ".join(str(s) for s in range(args.trials))
        (folder / "sweep.yaml").write_text(
            f"base: base.yaml\nepochs: {args.epochs}\nscheduler: fifo\n"
            f"search_space:\n  model.seed: grid({seeds})\n"
        )
        os.environ["PYTHONPATH"] = str(REPO)  # the Ray workers import this checkout
        start = time.monotonic()
        result = run_sweep(load_spec(folder / "sweep.yaml"), folder / "out")
        total = time.monotonic() - start
    timings = result.timings
    print(f"train.py alone (one BLAS thread), {args.epochs} epochs: {alone:.1f} s wall")
    print(
        f"sweep of {args.trials} trials on {os.cpu_count()} cores: {total:.1f} s wall "
        f"(Ray start {timings['ray_start_seconds']:.1f} s, data check on every node "
        f"{timings['node_check_seconds']:.1f} s, trials {timings['fit_seconds']:.1f} s)"
    )
    print("trial        wall s  in trial s  SGD passes s  wall - train.py alone")
    for row in sorted(result.rows, key=lambda r: r.trial_id):
        print(
            f"{row.trial_id}  {row.seconds:6.1f}  {row.trial_seconds:10.1f}  "
            f"{row.training_seconds:12.2f}  {row.seconds - alone:+6.1f}"
        )
    inside = sum(row.trial_seconds for row in result.rows) / len(result.rows)
    slots = min(os.cpu_count(), args.trials)
    per_trial = timings["fit_seconds"] * slots / args.trials
    once = timings["ray_start_seconds"] + timings["node_check_seconds"]
    print(
        f"per trial: {per_trial:.1f} s of a core ({inside:.1f} s inside the trial, "
        f"{per_trial - inside:.1f} s starting its process and scheduling) against {alone:.1f} s "
        f"for train.py alone (ratio {per_trial / alone:.2f}); once per sweep: {once:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
