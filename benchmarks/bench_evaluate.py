"""Throughput of importance-sampling evaluation against the machine's sgemm peak.

    python benchmarks/bench_evaluate.py [MODEL.pkl] [--num-samples 200] [--examples 200]

Prints the decoder FLOP rate achieved by ``ImportanceSampler`` and the
single-call sgemm rate NumPy reaches on the decoder's own shapes, measured in
the same run, and their ratio. Without a model, a randomly initialised seed
architecture (784-200-200 decoder, 200-d latent) is used.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def decoder_shapes(model):
    shapes, width = [], model.nhid
    for layer in model.conditional.mlp.layers:
        shapes.append((width, layer.dim))
        width = layer.dim
    return shapes


def sgemm_rate(rows, shapes, repeats=5) -> float:
    rng = np.random.default_rng(0)
    best = 0.0
    for _ in range(repeats):
        total_flops, total_time = 0.0, 0.0
        for k, n in shapes:
            a = rng.standard_normal((rows, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            a @ b
            start = time.perf_counter()
            a @ b
            total_time += time.perf_counter() - start
            total_flops += 2.0 * rows * k * n
        best = max(best, total_flops / total_time)
    return best


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default=None)
    p.add_argument("--num-samples", type=int, default=200)
    p.add_argument("--examples", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=100)
    args = p.parse_args(argv)
    from pylearn_vae.cli.common import prepare_process

    prepare_process()  # as scripts/train.py does
    from bench_train import seed_model  # the same seed architecture as the training benchmark

    from pylearn_vae.evaluation import ImportanceSampler
    from pylearn_vae.utils import serial

    model = serial.load(args.model) if args.model else seed_model()
    x = (np.random.default_rng(1).random((args.examples, model.nvis)) < 0.13).astype("float32")
    chunk = max(1, min(args.num_samples, 20000 // args.batch_size))
    sampler = ImportanceSampler(model, args.num_samples, chunk)
    sampler.log_likelihood(x[: args.batch_size])  # compile and warm up
    start = time.perf_counter()
    for lo in range(0, args.examples, args.batch_size):
        sampler.log_likelihood(x[lo : lo + args.batch_size])
    seconds = time.perf_counter() - start
    shapes = decoder_shapes(model)
    per_row = sum(2.0 * k * n for k, n in shapes)
    rows = args.examples * args.num_samples
    achieved = rows * per_row / seconds
    peak = sgemm_rate(args.batch_size * chunk, shapes)
    print(
        f"decoder rows: {rows:,} ({args.examples} examples x {args.num_samples} samples), {seconds:.2f} s"
    )
    print(f"decoder matrix products: {per_row / 1e6:.3f} MFLOP per row")
    print(f"achieved: {achieved / 1e9:.1f} GFLOP/s")
    print(
        f"NumPy sgemm on the same shapes ({args.batch_size * chunk} rows): {peak / 1e9:.1f} GFLOP/s"
    )
    print(f"ratio: {achieved / peak:.2f}")


if __name__ == "__main__":
    main()
