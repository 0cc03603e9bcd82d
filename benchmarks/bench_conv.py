"""Speed of one training step of yaml/conv_vae_mnist.yaml's model, against PyTorch eager.

    python benchmarks/bench_conv.py [--steps 100] [--threads 1,2] [--backends NUMBA]

For each thread count (each in a fresh process, the thread variables set
before NumPy starts): the median milliseconds of one Adam step of the
convolutional VAE (4x4 stride-2 convolutions 1->16->32 channels, 32-d
latent, 4x4 stride-2 transposed convolutions 32->16->1, Bernoulli output,
batch 100, float32) on each PyTensor backend and in PyTorch eager, run
interleaved, their ratios, and each backend's time from set-up to the end
of its first step (Numba compiles at the first call). Point
``PYTENSOR_FLAGS=compiledir=...`` and ``NUMBA_CACHE_DIR`` at empty folders
to time a cold compile.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from bench_train import measure, set_threads, sgd_step, torch_vae_update

BATCH, NVIS, NHID = 100, 784, 32
# (channels in, channels out, input side) of the two convolutions and the two
# transposed convolutions; all have 4x4 kernels, stride 2 and padding 1.
ENCODER = [(1, 16, 28), (16, 32, 14)]
DECODER = [(32, 16, 7), (16, 1, 14)]


def conv_model(seed=0):
    from pylearn_vae.models.mlp import (
        MLP,
        ConvRectifiedLinear,
        Deconv,
        RectifiedLinear,
        RectifierConvNonlinearity,
        SpaceConverter,
    )
    from pylearn_vae.models.vae import VAE
    from pylearn_vae.models.vae.conditional import BernoulliVector, DiagonalGaussian
    from pylearn_vae.models.vae.prior import DiagonalGaussianPrior
    from pylearn_vae.space import Conv2DSpace, VectorSpace

    def conv(name, out):
        return ConvRectifiedLinear(
            layer_name=name,
            output_channels=out,
            kernel_shape=[4, 4],
            kernel_stride=[2, 2],
            border_mode=1,
            pool_type=None,
            pool_shape=None,
            pool_stride=None,
            tied_b=True,
            irange=0.05,
        )

    def deconv(name, out, **kwargs):
        return Deconv(
            layer_name=name,
            num_channels=out,
            kernel_shape=[4, 4],
            output_stride=[2, 2],
            pad_out=1,
            irange=0.05,
            **kwargs,
        )

    decoder = MLP(
        layer_name="decoder",
        layers=[
            RectifiedLinear(layer_name="h_d_1", dim=32 * 7 * 7, irange=0.05),
            SpaceConverter("to_maps", Conv2DSpace([7, 7], num_channels=32)),
            deconv("h_d_2", 16, tied_b=True, nonlinearity=RectifierConvNonlinearity()),
            deconv("logits", 1),
            SpaceConverter("to_pixels", VectorSpace(NVIS)),
        ],
    )
    encoder = MLP(
        layer_name="encoder",
        layers=[
            SpaceConverter("to_image", Conv2DSpace([28, 28], num_channels=1)),
            conv("h_e_1", 16),
            conv("h_e_2", 32),
        ],
    )
    return VAE(
        nvis=NVIS,
        nhid=NHID,
        seed=seed,
        prior=DiagonalGaussianPrior(),
        conditional=BernoulliVector(name="conditional", mlp=decoder, output_layer_required=False),
        posterior=DiagonalGaussian(name="posterior", mlp=encoder),
    )


def data(n=5000):
    import numpy as np

    return (np.random.default_rng(1).random((n, NVIS)) < 0.13).astype("float32")


def ours(mode):
    """A zero-argument callable doing one training step, and the set-up + first step seconds."""
    from pylearn_vae.training_algorithms.learning_rule import Adam

    return sgd_step(mode, conv_model(), data(), BATCH, Adam())


def torch_step():
    import numpy as np
    import torch

    torch.manual_seed(0)
    x = torch.from_numpy(data())
    nn, F = torch.nn, torch.nn.functional
    convs = [nn.Conv2d(i, o, 4, stride=2, padding=1) for i, o, _ in ENCODER]
    mu, log_sigma = nn.Linear(32 * 7 * 7, NHID), nn.Linear(32 * 7 * 7, NHID)
    dense = nn.Linear(NHID, 32 * 7 * 7)
    deconvs = [nn.ConvTranspose2d(i, o, 4, stride=2, padding=1) for i, o, _ in DECODER]
    # The last transposed convolution has one bias per pixel (untied), as the YAML's.
    deconvs[-1].bias = None
    pixel_bias = nn.Parameter(torch.zeros(1, 1, 28, 28))
    modules = [*convs, mu, log_sigma, dense, *deconvs]
    params = [p for m in modules for p in m.parameters()] + [pixel_bias]
    opt = torch.optim.Adam(params, lr=1e-3)
    order = np.random.default_rng(2).permutation(len(x))
    state = {"i": 0}

    def run():
        i = state["i"] % (len(x) // BATCH)
        xb = x[order[i * BATCH : (i + 1) * BATCH]]
        h = xb.view(-1, 1, 28, 28)
        for c in convs:
            h = F.relu(c(h))
        h = h.flatten(1)
        m, s = mu(h), log_sigma(h)
        z = m + torch.exp(s) * torch.randn_like(m)
        g = F.relu(dense(z)).view(-1, 32, 7, 7)
        g = F.relu(deconvs[0](g))
        logits = (deconvs[1](g) + pixel_bias).flatten(1)
        torch_vae_update(opt, xb, logits, m, s)
        state["i"] += 1

    return run


def one_thread_count(args) -> None:
    set_threads(args.threads)
    import warnings

    warnings.filterwarnings("ignore")
    from pylearn_vae.speedups import prepare_process

    prepare_process()  # as scripts/train.py does
    runners, compile_times = {}, {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        runners[f"pylearn_vae {backend}"], compile_times[backend] = ours(backend)
    try:
        runners["PyTorch eager"] = torch_step()
    except ImportError:
        print("(PyTorch is not importable; skipped)")
    from pylearn_vae import numerics

    with numerics.applied():  # as scripts/train.py trains
        medians = measure(runners, args.steps, warmup=5)
    print(f"threads: {args.threads}; batch {BATCH}")
    for name, seconds in medians.items():
        backend = name.split()[-1]
        comp = (
            f"  set-up + first step {compile_times[backend]:.1f} s"
            if backend in compile_times
            else ""
        )
        print(f"  {name:22s} {seconds * 1e3:8.2f} ms/step{comp}")
    torch_seconds = medians.get("PyTorch eager")
    if torch_seconds:
        for name, seconds in medians.items():
            if name.startswith("pylearn_vae"):
                print(f"  {name} / PyTorch eager: {seconds / torch_seconds:.2f}x the time")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--backends", default="NUMBA", help="comma-separated PyTensor modes")
    args = p.parse_args(argv)
    counts = [int(t) for t in args.threads.split(",") if t.strip()]
    if len(counts) == 1:
        args.threads = counts[0]
        one_thread_count(args)
        return
    for count in counts:  # a fresh process each: thread pools are sized at start
        command = [sys.executable, os.path.abspath(__file__), "--threads", str(count)]
        command += ["--steps", str(args.steps), "--backends", args.backends]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
