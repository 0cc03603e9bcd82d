"""Importance-sampling evaluation against the machine's sgemm roofline, measured in one run.

    python benchmarks/bench_evaluate.py [MODEL.h5] [--num-samples 5000] [--examples 400]
                                        [--workers N] [--cli]

For a saved model (default: a randomly initialised seed architecture, 784-200-200
decoder and 200-d latent, on random binary data) it prints:

* the sgemm roofline: the time NumPy's own sgemm needs for the decoder's
  matrix products on all the rows (examples x samples), at the shapes of one
  compiled call, with every BLAS thread;
* ``evaluate()`` as ``scripts/evaluate.py`` runs it (the same chunking, the
  worker processes, their start-up, both estimates), and the ratio of the
  roofline to it (1.0 would mean nothing but the decoder's matrix products,
  at sgemm's speed);
* the slices of one call in this process: drawing the noise, up to the
  decoder's output, the whole estimate;
* with ``--cli`` and a model file, the real program end to end
  (``scripts/evaluate.py`` in a subprocess, on the test split).

The decoder's products are counted from its layers' weight matrices
(``W`` parameters of the conditional's MLP and output layer).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def decoder_shapes(model) -> list[tuple[int, int]]:
    """(inputs, outputs) of every weight matrix the decoder applies per sample."""
    return [
        tuple(p.get_value().shape)
        for p in model.conditional.get_params()
        if p.get_value().ndim == 2
    ]


def sgemm_seconds(rows: int, shapes, repeats: int = 5) -> float:
    """Best time of NumPy's sgemm for ``rows`` x each shape, summed."""
    rng = np.random.default_rng(0)
    pairs = [
        (
            rng.standard_normal((rows, k), dtype=np.float32),
            rng.standard_normal((k, n), dtype=np.float32),
        )
        for k, n in shapes
    ]
    best = float("inf")
    for _ in range(repeats):
        total = 0.0
        for a, b in pairs:
            a @ b
            start = time.perf_counter()
            a @ b
            total += time.perf_counter() - start
        best = min(best, total)
    return best


def slices(model, x, k: int, repeats: int = 3) -> dict:
    """Milliseconds per call of the noise, the decoder and the whole estimate."""
    from pylearn_vae.compile import function

    X = model.get_input_space().make_theano_batch("X")
    epsilon = model.sample_from_epsilon((k, X.shape[0], model.nhid))
    z = model.sample_from_q_z_given_x(epsilon=epsilon, phi=model.encode_phi(X))
    theta = model._decode_samples(z, k)
    theta = theta[0] if isinstance(theta, (tuple, list)) else theta
    parts = {
        "noise": epsilon.sum(),
        "noise + decoder": theta.sum(),
        "whole estimate": model.log_likelihood_approximation(X, k),
    }
    times = {}
    for name, out in parts.items():
        fn = function([X], out)
        fn(x)
        start = time.perf_counter()
        for _ in range(repeats):
            fn(x)
        times[name] = (time.perf_counter() - start) / repeats * 1e3
    return times


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default=None)
    p.add_argument("--num-samples", type=int, default=5000)
    p.add_argument("--examples", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--workers", type=int, default=None, help="default: one per usable CPU")
    p.add_argument("--cli", action="store_true", help="also time scripts/evaluate.py")
    args = p.parse_args(argv)
    from pylearn_vae.speedups import prepare_process

    prepare_process()  # as scripts/evaluate.py does
    from bench_train import seed_model  # the same seed architecture as the training benchmark

    from pylearn_vae import numerics
    from pylearn_vae.evaluation import ImportanceSampler, samples_per_call, usable_cpus
    from pylearn_vae.persistence import load

    model = load(args.model) if args.model else seed_model()
    workers = args.workers or usable_cpus()
    x = (np.random.default_rng(1).random((args.examples, model.nvis)) < 0.13).astype("float32")
    chunk = samples_per_call(model, args.num_samples, args.batch_size)
    shapes = decoder_shapes(model)
    rows = args.examples * args.num_samples
    flops = rows * sum(2.0 * k * n for k, n in shapes)
    roofline = sgemm_seconds(args.batch_size * chunk, shapes) * rows / (args.batch_size * chunk)
    print(f"decoder weight shapes {shapes}: {flops / rows / 1e6:.3f} MFLOP per sample")
    print(
        f"{args.examples} examples x {args.num_samples} samples = {rows:,} decoder rows; "
        f"sgemm roofline {roofline:.2f} s ({flops / roofline / 1e9:.0f} GFLOP/s, "
        f"{usable_cpus()} threads)"
    )
    sampler = ImportanceSampler(model, args.num_samples, chunk)
    sampler.evaluate(x[: args.batch_size], args.batch_size, progress=False)  # compile
    with numerics.applied():
        result = sampler.evaluate(x, args.batch_size, progress=False, workers=workers)
    seconds = result["seconds"]
    print(
        f"evaluate(), {workers} worker(s), start-up included: {seconds:.2f} s "
        f"({flops / seconds / 1e9:.0f} GFLOP/s); roofline / it = {roofline / seconds:.2f}"
    )
    with numerics.applied():
        times = slices(model, x[: args.batch_size], chunk)
    print(f"one call in this process ({args.batch_size} examples x {chunk} samples):")
    for name, ms in times.items():
        print(f"  {name:16s} {ms:8.1f} ms")
    if args.cli and args.model:
        cmd = [sys.executable, os.path.join(ROOT, "scripts", "evaluate.py"), args.model]
        cmd += ["--num-samples", str(args.num_samples), "--max-examples", str(args.examples)]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        print(
            f"scripts/evaluate.py on {args.examples} test examples, whole process: {wall:.2f} s "
            f"(roofline / it = {roofline / wall:.2f})"
        )


if __name__ == "__main__":
    main()
