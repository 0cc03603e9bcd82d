"""Test NLL of one training run's saved models against the training time that produced them.

    python benchmarks/nll_curve.py yaml/vamp_vae_mnist_epoch*.h5 yaml/vamp_vae_mnist_best.h5 \\
        [--num-samples 5000] [--max-examples 1000] [--json curve.json]

For each model file (the snapshots ``EpochSnapshots`` writes during a run,
and the run's best model) it reads the model's own monitor: the epochs it
had trained, the sum of ``seconds_per_epoch`` up to then (training alone)
and the sum of ``total_seconds_last_epoch`` (training with the monitoring
passes, extensions and saves, up to the end of the previous epoch), and its
``valid_objective``. It then runs ``scripts/evaluate.py`` on the file (the
real program, in a subprocess; ``--max-examples`` spread over the test split,
which is ordered by class) and prints one row per file, in order of epochs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pylearn_vae.cli.common import program, say  # noqa: E402


def monitor_summary(path: str) -> dict:
    """Epochs, training seconds and validation objective recorded in a saved model."""
    from pylearn_vae.cli.common import CLIError, load_model

    try:
        monitor = load_model(path).monitor
    except CLIError as exc:
        say(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    epochs = monitor.get_epochs_seen()

    def record(name):
        values = monitor.channels[name].val_record if name in monitor.channels else []
        return [float(v) for v in values[: epochs + 1]]

    valid = record("valid_objective")
    return {
        "epochs": epochs,
        "training_seconds": sum(record("seconds_per_epoch")),
        "seconds_with_monitoring": sum(record("total_seconds_last_epoch")),
        "valid_objective": valid[-1] if valid else float("nan"),
    }


def evaluate(path: str, num_samples: int, max_examples: int, seed: int) -> dict:
    """``scripts/evaluate.py`` on ``path``; its JSON result."""
    with tempfile.TemporaryDirectory(prefix="nll-curve-") as folder:
        out = Path(folder) / "result.json"
        command = [sys.executable, str(REPO / "scripts" / "evaluate.py"), path]
        command += ["--num-samples", str(num_samples), "--seed", str(seed), "--json", str(out)]
        if max_examples:
            command += ["--max-examples", str(max_examples)]
        run = subprocess.run(command, capture_output=True, text=True)
        if run.returncode != 0:
            say(f"error: scripts/evaluate.py failed on {path}:\n{run.stderr}", file=sys.stderr)
            raise SystemExit(1)
        return json.loads(out.read_text())


@program
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help="saved models of one run (.h5)")
    p.add_argument("--num-samples", type=int, default=5000)
    p.add_argument("--max-examples", type=int, default=1000, help="0 for the whole test set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the rows to this file")
    args = p.parse_args(argv)
    if args.json:
        from pylearn_vae.cli.common import CLIError, check_output

        try:
            check_output(args.json, reads=args.models)
        except CLIError as exc:
            say(f"error: {exc}", file=sys.stderr)
            return 1
    rows = []
    for path in args.models:
        row = {"model": path, **monitor_summary(path)}
        result = evaluate(path, args.num_samples, args.max_examples, args.seed)
        row.update(
            nll=result["nll"],
            nll_stderr=result["nll_stderr"],
            negative_elbo=result["negative_elbo"],
            num_examples=result["num_examples"],
            evaluation_seconds=result["seconds"],
        )
        rows.append(row)
        say(f"{path}: epoch {row['epochs']}, NLL {row['nll']:.2f}", file=sys.stderr, flush=True)
    rows.sort(key=lambda row: row["epochs"])
    say(
        f"test NLL, K={args.num_samples}, on {rows[0]['num_examples']} test images "
        "(training seconds: sum of seconds_per_epoch; with monitoring: sum of "
        "total_seconds_last_epoch)"
    )
    say("| epoch | training (s) | with monitoring (s) | valid_objective | NLL | -ELBO | model |")
    say("|---|---|---|---|---|---|---|")
    for row in rows:
        say(
            f"| {row['epochs']} | {row['training_seconds']:,.0f} | "
            f"{row['seconds_with_monitoring']:,.0f} | {row['valid_objective']:.2f} | "
            f"{row['nll']:.2f} ± {row['nll_stderr']:.2f} | {row['negative_elbo']:.2f} | "
            f"`{Path(row['model']).name}` |"
        )
    if args.json:
        from pylearn_vae.utils.files import ModelFileError, atomic_write_text

        try:
            atomic_write_text(args.json, json.dumps(rows, indent=2))
        except ModelFileError as exc:
            say(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
