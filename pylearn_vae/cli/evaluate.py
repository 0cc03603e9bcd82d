"""``scripts/evaluate.py``: importance-sampling NLL of a trained VAE."""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures.process import BrokenProcessPool

from pylearn_vae import speedups
from pylearn_vae.cli.common import CLIError, check_output, load_model, program, run, say
from pylearn_vae.text import escape

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="evaluate.py",
        description="Estimate the negative log-likelihood "
        "(nats) of a trained VAE by importance sampling, and its negative ELBO.",
    )
    p.add_argument("model", help="saved model (.h5, or a .pkl from pylearn_vae)")
    p.add_argument(
        "--which-set",
        default="test",
        choices=["train", "valid", "test"],
        help="split (default test)",
    )
    p.add_argument(
        "--num-samples",
        type=int,
        default=5000,
        help="importance samples per example (default 5000)",
    )
    p.add_argument("--batch-size", type=int, default=100, help="examples per step (default 100)")
    p.add_argument(
        "--max-examples",
        type=int,
        default=None,
        help="evaluate only this many examples (spread over the split)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="noise seed; the same seed gives the same numbers"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes sharing the work (default: one per usable CPU; "
        "the numbers do not depend on it)",
    )
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    return p


def _check_args(args) -> None:
    """Refuse counts below 1."""
    if args.num_samples < 1 or args.batch_size < 1:
        raise CLIError("--num-samples and --batch-size must be >= 1")
    if args.workers is not None and args.workers < 1:
        raise CLIError(f"--workers must be >= 1, got {args.workers}")
    if args.seed < 0:
        raise CLIError(f"--seed must be >= 0, got {args.seed}")
    if args.max_examples is not None and args.max_examples < 0:
        raise CLIError(f"--max-examples must be >= 0 (0: the whole split), got {args.max_examples}")
    if args.json:
        check_output(args.json, reads=[args.model], flag="--json")


def _examples(args, nvis: int):
    """The rows of the chosen split to evaluate (``--max-examples`` of them, spread out)."""
    from pylearn_vae.datasets.binarized_mnist import BinarizedMNIST

    try:
        data = BinarizedMNIST(args.which_set).X
    except (OSError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    if data.shape[1] != nvis:
        raise CLIError(f"the model expects {nvis} inputs but {args.which_set} has {data.shape[1]}")
    if args.max_examples:
        stride = max(1, data.shape[0] // args.max_examples)  # the test split is ordered by class
        data = data[::stride][: args.max_examples]
    return data


def _print_result(args, result: dict) -> None:
    """The NLL, the negative ELBO and the work done, one line each on standard output."""
    say(
        f"{args.which_set} NLL (importance sampling, K={args.num_samples}): "
        f"{result['nll']:.3f} +- {result['nll_stderr']:.3f} nats"
    )
    say(
        f"{args.which_set} negative ELBO (mean of the {args.num_samples} log-weights): "
        f"{result['negative_elbo']:.3f} +- {result['negative_elbo_stderr']:.3f} nats"
    )
    say(
        f"{result['num_examples']} examples, {args.num_samples} samples each, {result['seconds']:.1f} s"
    )


def _write_json(path: str, result: dict) -> None:
    """Write ``result`` to ``path`` as JSON, atomically."""
    from pylearn_vae.utils.files import atomic_write

    text = json.dumps(result, indent=2).encode()
    try:
        atomic_write(path, lambda handle: handle.write(text))
    except Exception as exc:
        raise CLIError(str(exc)) from None


def _body(args) -> int:
    from pylearn_vae.evaluation import ImportanceSampler, samples_per_call, usable_cpus

    speedups.prepare_process()

    _check_args(args)
    model = load_model(args.model)
    data = _examples(args, model.nvis)
    chunk = samples_per_call(model, args.num_samples, args.batch_size)  # bounds memory
    sampler = ImportanceSampler(model, args.num_samples, chunk, seed=args.seed)
    batches = -(-data.shape[0] // args.batch_size)
    workers = min(args.workers or usable_cpus(), batches)
    say(
        f"evaluating {escape(args.model)} on {data.shape[0]} {args.which_set} examples with "
        f"{args.num_samples} importance samples each ({chunk} per call, "
        f"{workers} worker{'s' if workers > 1 else ''})...",
        file=sys.stderr,
        flush=True,
    )
    try:
        result = sampler.evaluate(data, args.batch_size, workers=workers)
    except BrokenProcessPool:
        raise CLIError(
            "a worker process died (killed, or out of memory?); "
            "run again, with --workers 1 to evaluate in this process"
        ) from None
    result.update({"model": args.model, "which_set": args.which_set, "seed": args.seed})
    _print_result(args, result)
    if args.json:
        _write_json(args.json, result)
    return 0


@program
def main(argv=None) -> int:
    return run(_body, build_parser().parse_args(argv))
