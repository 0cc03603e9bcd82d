"""Speed of one training step of the seed model, against the machine's sgemm peak.

    python benchmarks/bench_train.py [--steps 200] [--backends NUMBA,CVM,JAX] [--threads 1]
                                     [--compare] [--epoch]

For each backend: median milliseconds per SGD+momentum step (seed model:
784-200 ReLU encoder, 200-d latent, 200-200 ReLU decoder, Bernoulli output,
batch 200, float32), examples per second, the step's matrix-product FLOPs,
the sgemm peak NumPy reaches in the same run (on the step's own shapes and on
large matrices), the fraction of that roofline the step reaches, and the
time from set-up to the end of the first step (Numba compiles at the first
call: a cold compile with an empty PyTensor cache, a load from it otherwise). With
``--compare``, the same model and step in PyTorch (eager) and JAX (jit), if
importable, interleaved with ours, and the ratios. With ``--epoch``, the time
of a whole epoch of yaml/vae_mnist.yaml's shape (50,000 examples) with and
without its monitoring passes (synthetic data of the same size). With
``--cli N``, also the real job: ``scripts/train.py yaml/vae_mnist.yaml
--epochs N`` (on a copy of the YAML in a temporary folder, with the data
installed by the download script): its wall time against the ``--epoch``
prediction for N epochs measured in the same run (three benchmark epochs
before the real job and three after), and its own per-epoch records
(``training_seconds_this_epoch``, ``total_seconds_last_epoch``) against the
benchmark's training and monitoring, so that a change of the machine's speed
between the two shows as such and not as overhead of the real job.

Set ``--threads`` to fix the number of BLAS/compute threads (it must be set
before NumPy starts, so the script re-executes itself with the right
environment).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

BATCH, NVIS, NHID, HIDDEN = 200, 784, 200, 200
LAYERS = [
    (NVIS, HIDDEN),
    (HIDDEN, NHID),
    (HIDDEN, NHID),  # encoder h_e_1, mu, log_sigma
    (NHID, HIDDEN),
    (HIDDEN, HIDDEN),
    (HIDDEN, NVIS),
]  # decoder h_1, h_2, mu
# The first layer's input gradient is not needed.
STEP_FLOPS = sum(2 * BATCH * i * o * (2 if k == 0 else 3) for k, (i, o) in enumerate(LAYERS))


def set_threads(threads: int) -> None:
    """Run this process (re-executed with the thread variables set) on ``threads`` cores.

    The environment variables size the OpenMP, OpenBLAS, MKL and Numba thread
    pools; pinning the process to that many cores also holds to the count
    the libraries that ignore them (XLA's CPU runtime used 1.6 cores with
    every variable set to 1).
    """
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) > threads:
            os.sched_setaffinity(0, cores[:threads])
    wanted = str(threads)
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
    if all(os.environ.get(n) == wanted for n in names):
        return
    env = {**os.environ, **{n: wanted for n in names}}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def sgemm_peak(shapes, repeats=20) -> float:
    import numpy as np

    rng = np.random.default_rng(0)
    mats = [
        (rng.standard_normal(a, dtype=np.float32), rng.standard_normal(b, dtype=np.float32))
        for a, b in shapes
    ]
    flops = sum(2 * a[0] * a[1] * b[1] for a, b in shapes)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for a, b in mats:
            a @ b
        best = min(best, time.perf_counter() - start)
    return flops / best


def openblas_kernels() -> list[str]:
    """The kernel family each OpenBLAS loaded in this process runs (NumPy's for
    the sgemm peak and the C backend, SciPy's for Numba's ``np.dot``).

    OpenBLAS picks it from the processor unless ``OPENBLAS_CORETYPE`` forces
    one; a processor newer than the OpenBLAS build can get an older family
    (half the speed where AVX-512 goes unused).
    """
    import ctypes

    found = []
    with open("/proc/self/maps") as maps:
        paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
    for path in paths:
        lib = ctypes.CDLL(path)
        for symbol in (
            "scipy_openblas_get_corename64_",
            "scipy_openblas_get_corename",
            "openblas_get_corename64_",
            "openblas_get_corename",
        ):
            function = getattr(lib, symbol, None)
            if function is not None:
                function.restype = ctypes.c_char_p
                found.append(f"{os.path.basename(path)}: {function().decode()}")
                break
    return found


def monitoring_flop_ratio(n_train=50_000, n_monitored=70_000) -> float:
    """Matrix FLOPs of the monitoring passes over those of the training epoch.

    Monitoring runs each layer forward once per example; training runs the
    step's products (forward, weight and input gradients). At equal speed
    per FLOP, an epoch with monitoring takes 1 + this ratio times the
    training alone.
    """
    forward = sum(2 * i * o for i, o in LAYERS)
    return (n_monitored * forward) / (n_train / BATCH * STEP_FLOPS)


def step_shapes():
    """The matrix products of one step (forward, weight gradients, input gradients)."""
    shapes = []
    for k, (i, o) in enumerate(LAYERS):
        shapes.append(((BATCH, i), (i, o)))  # forward
        shapes.append(((i, BATCH), (BATCH, o)))  # dW
        if k:
            shapes.append(((BATCH, o), (o, i)))  # d input
    return shapes


def seed_model(seed=0):
    from pylearn_vae.models.mlp import MLP, RectifiedLinear
    from pylearn_vae.models.vae import VAE
    from pylearn_vae.models.vae.conditional import BernoulliVector, DiagonalGaussian
    from pylearn_vae.models.vae.prior import DiagonalGaussianPrior

    return VAE(
        nvis=NVIS,
        nhid=NHID,
        seed=seed,
        prior=DiagonalGaussianPrior(),
        conditional=BernoulliVector(
            name="conditional",
            mlp=MLP(
                layer_name="decoder",
                layers=[
                    RectifiedLinear(layer_name="h_1", dim=HIDDEN, irange=0.001),
                    RectifiedLinear(layer_name="h_2", dim=HIDDEN, irange=0.001),
                ],
            ),
        ),
        posterior=DiagonalGaussian(
            name="posterior",
            mlp=MLP(
                layer_name="encoder",
                layers=[RectifiedLinear(layer_name="h_e_1", dim=HIDDEN, irange=0.001)],
            ),
        ),
    )


def data(n=10000):
    import numpy as np

    return (np.random.default_rng(1).random((n, NVIS)) < 0.13).astype("float32")


def ours(mode):
    """Return a zero-argument callable doing one training step, and a setup time."""
    from pylearn_vae.training_algorithms.learning_rule import Momentum

    return sgd_step(mode, seed_model(), data(), BATCH, Momentum(0.9))


def sgd_step(mode, model, x, batch_size, learning_rule):
    """One SGD step of ``model`` (VAECriterion, 1 sample, learning rate 1e-3)
    on minibatches of ``x`` as a zero-argument callable, and the seconds from
    set-up to the end of the first step (Numba compiles at the first call)."""
    import numpy as np

    from pylearn_vae.costs.vae import VAECriterion
    from pylearn_vae.datasets import DenseDesignMatrix
    from pylearn_vae.training_algorithms.sgd import SGD

    algo = SGD(
        learning_rate=1e-3,
        cost=VAECriterion(1),
        batch_size=batch_size,
        learning_rule=learning_rule,
        theano_function_mode=mode,
    )
    order = np.random.default_rng(2).permutation(len(x))
    batches = [order[i : i + batch_size] for i in range(0, len(x) - batch_size + 1, batch_size)]
    start = time.perf_counter()
    algo.setup(model, DenseDesignMatrix(X=x))
    step = algo._step_function(batch_size)
    step(batches[0])
    compile_seconds = time.perf_counter() - start
    state = {"i": 0}

    def run():
        # float() waits for the result, as training's finiteness check does:
        # the JAX backend returns before its computation has finished.
        float(step(batches[state["i"] % len(batches)]))
        state["i"] += 1

    return run, compile_seconds


def torch_vae_update(opt, xb, logits, mu, log_sigma) -> None:
    """One optimiser step on the negative ELBO of a Bernoulli-output VAE with a
    diagonal Gaussian posterior and a standard normal prior (mean over the batch)."""
    import torch

    batch = xb.shape[0]
    F = torch.nn.functional
    rec = F.binary_cross_entropy_with_logits(logits, xb, reduction="sum") / batch
    kl = (-log_sigma + 0.5 * (torch.exp(2 * log_sigma) + mu * mu) - 0.5).sum() / batch
    opt.zero_grad(set_to_none=True)
    (rec + kl).backward()
    opt.step()


def torch_step():
    import numpy as np
    import torch

    torch.manual_seed(0)
    x = torch.from_numpy(data())

    def lin(i, o):
        layer = torch.nn.Linear(i, o)
        torch.nn.init.uniform_(layer.weight, -0.001, 0.001)
        torch.nn.init.zeros_(layer.bias)
        return layer

    enc, mu, ls = lin(NVIS, HIDDEN), lin(HIDDEN, NHID), lin(HIDDEN, NHID)
    d1, d2, out = lin(NHID, HIDDEN), lin(HIDDEN, HIDDEN), lin(HIDDEN, NVIS)
    params = [p for m in (enc, mu, ls, d1, d2, out) for p in m.parameters()]
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    order = np.random.default_rng(2).permutation(len(x))
    state = {"i": 0}
    F = torch.nn.functional

    def run():
        i = state["i"] % (len(x) // BATCH)
        xb = x[order[i * BATCH : (i + 1) * BATCH]]
        h = F.relu(enc(xb))
        m, s = mu(h), ls(h)
        z = m + torch.exp(s) * torch.randn_like(m)
        logits = out(F.relu(d2(F.relu(d1(z)))))
        torch_vae_update(opt, xb, logits, m, s)
        state["i"] += 1

    return run


def jax_step():
    import jax
    import jax.numpy as jnp
    import numpy as np

    x = jnp.asarray(data())
    rng = np.random.default_rng(0)
    params = [
        (
            jnp.asarray(rng.uniform(-0.001, 0.001, (i, o)).astype("float32")),
            jnp.zeros(o, jnp.float32),
        )
        for i, o in LAYERS
    ]
    vel = jax.tree_util.tree_map(jnp.zeros_like, params)

    def loss(p, xb, key):
        (We, be), (Wm, bm), (Ws, bs), (W1, b1), (W2, b2), (Wo, bo) = p
        h = jax.nn.relu(xb @ We + be)
        m, s = h @ Wm + bm, h @ Ws + bs
        z = m + jnp.exp(s) * jax.random.normal(key, m.shape, m.dtype)  # float32 under x64 too
        logits = jax.nn.relu(jax.nn.relu(z @ W1 + b1) @ W2 + b2) @ Wo + bo
        rec = (jax.nn.softplus(logits) - xb * logits).sum() / BATCH
        kl = (-s + 0.5 * (jnp.exp(2 * s) + m * m) - 0.5).sum() / BATCH
        return rec + kl

    @jax.jit
    def update(p, v, xb, key):
        g = jax.grad(loss)(p, xb, key)
        v = jax.tree_util.tree_map(lambda a, b: 0.9 * a - 1e-3 * b, v, g)
        p = jax.tree_util.tree_map(lambda a, b: a + b, p, v)
        return p, v

    order = np.random.default_rng(2).permutation(x.shape[0])
    state = {"p": params, "v": vel, "i": 0, "key": jax.random.PRNGKey(0)}

    def run():
        i = state["i"] % (x.shape[0] // BATCH)
        state["key"], sub = jax.random.split(state["key"])
        state["p"], state["v"] = update(
            state["p"], state["v"], x[order[i * BATCH : (i + 1) * BATCH]], sub
        )
        jax.block_until_ready(state["p"])
        state["i"] += 1

    return run


def measure(runners: dict, steps: int, warmup: int = 20) -> dict:
    """Interleave the runners in rounds so that they share the machine's state fairly."""
    for run in runners.values():
        for _ in range(warmup):
            run()
    times = {name: [] for name in runners}
    rounds = 10
    per_round = max(1, steps // rounds)
    for _ in range(rounds):
        for name, run in runners.items():
            for _ in range(per_round):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def epoch_times(mode, repeats: int = 3, n_train=50_000, n_other=10_000):
    """Seconds of ``repeats`` training epochs and of the monitoring pass
    (train/valid/test) after each, alternating as the real job does."""
    import numpy as np

    from pylearn_vae.costs.vae import VAECriterion
    from pylearn_vae.datasets import DenseDesignMatrix
    from pylearn_vae.training_algorithms.learning_rule import Momentum
    from pylearn_vae.training_algorithms.sgd import SGD

    rng = np.random.default_rng(5)

    def synthetic(n):
        return DenseDesignMatrix(X=(rng.random((n, NVIS)) < 0.13).astype("float32"))

    train = synthetic(n_train)
    algo = SGD(
        learning_rate=1e-3,
        cost=VAECriterion(1),
        batch_size=BATCH,
        learning_rule=Momentum(0.9),
        monitoring_dataset={
            "train": train,
            "valid": synthetic(n_other),
            "test": synthetic(n_other),
        },
        theano_function_mode=mode,
    )
    algo.progress = False
    model = seed_model()
    algo.setup(model, train)
    algo.train(train)  # warm-up (compiles nothing new; fills caches)
    model.monitor()
    training, monitoring = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        algo.train(train)
        training.append(time.perf_counter() - start)
        start = time.perf_counter()
        model.monitor()
        monitoring.append(time.perf_counter() - start)
    return training, monitoring


def cli_run(epochs: int, mode: str) -> dict:
    """The real training program on the seed YAML for ``epochs`` epochs: its
    wall seconds, and from its final checkpoint the per-epoch records of
    ``training_seconds_this_epoch`` and ``total_seconds_last_epoch``."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from pylearn_vae.persistence.hdf5_file import read_tree, reading

    repo = Path(__file__).resolve().parents[1]
    folder = Path(tempfile.mkdtemp(prefix="bench_cli_"))
    try:
        config = folder / "vae_mnist.yaml"
        shutil.copy(repo / "yaml" / "vae_mnist.yaml", config)
        flags = ",".join(f for f in (os.environ.get("PYTENSOR_FLAGS", ""), f"mode={mode}") if f)
        env = {**os.environ, "PYTENSOR_FLAGS": flags}
        command = [sys.executable, str(repo / "scripts" / "train.py"), str(config)]
        start = time.perf_counter()
        subprocess.run([*command, "--epochs", str(epochs), "--quiet"], env=env, check=True)
        wall = time.perf_counter() - start
        path = folder / "vae_mnist_checkpoint.h5"
        with reading(path, "checkpoint") as handle:
            channels = read_tree(handle["monitor"], str(path))["channels"]
        return {
            "wall": wall,
            # record k is taken at the end of epoch k; record 0 before training
            "training": [
                float(v) for v in channels["training_seconds_this_epoch"]["val_record"][1:]
            ],
            # record k holds epoch k-1's total: epochs 1 .. N-1
            "total": [float(v) for v in channels["total_seconds_last_epoch"]["val_record"][2:]],
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _spread(values) -> str:
    return f"{statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def report_epochs(backend: str, cli_epochs: int) -> None:
    """Print the ``--epoch`` figures for ``backend`` and, with ``cli_epochs``,
    the real job's against them. The benchmark's epochs are timed before and
    after the real job; medians and ranges show how much the machine moved."""
    from pylearn_vae import numerics

    with numerics.applied():
        training, monitoring = epoch_times(backend)
    if cli_epochs:
        real = cli_run(cli_epochs, backend)
        with numerics.applied():
            after = epoch_times(backend)
        training, monitoring = training + after[0], monitoring + after[1]
    train_s, monitor_s = statistics.median(training), statistics.median(monitoring)
    print(
        f"pylearn_vae {backend}: training {_spread(training)}, monitoring {_spread(monitoring)}; "
        f"epoch with monitoring / training alone: {(train_s + monitor_s) / train_s:.2f}x"
    )
    if not cli_epochs:
        return
    predicted = cli_epochs * (train_s + monitor_s)
    total = statistics.median(real["total"])
    others = [t - r for t, r in zip(real["total"], real["training"], strict=False)]
    outside = real["wall"] - sum(real["total"]) - total  # the last epoch's total is not recorded
    print(
        f"  scripts/train.py, {cli_epochs} epochs: {real['wall']:.1f} s wall; benchmark predicts "
        f"{predicted:.1f} s: real / predicted {real['wall'] / predicted:.2f}x\n"
        f"    its epochs (training_seconds_this_epoch): {_spread(real['training'])}, "
        f"{statistics.median(real['training']) / train_s:.2f}x the benchmark's median\n"
        f"    its monitoring, extensions and saves (total_seconds_last_epoch - training): "
        f"{_spread(others)}, {statistics.median(others) / monitor_s:.2f}x the benchmark's monitoring\n"
        f"    its whole epoch (total_seconds_last_epoch): {_spread(real['total'])}, "
        f"{total / (train_s + monitor_s):.2f}x the benchmark's epoch with monitoring\n"
        f"    start-up, compiling (cached) and exit: {outside:.1f} s"
    )


def report_steps(medians: dict, compile_times: dict, peak_step: float, peak_large: float) -> None:
    """Print the step table: each implementation's median step against the sgemm roofline."""
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(f"threads: {threads}; step matrix products: {STEP_FLOPS / 1e6:.1f} MFLOP")
    forced = os.environ.get("OPENBLAS_CORETYPE")
    print(
        "OpenBLAS kernels: "
        + ("; ".join(openblas_kernels()) or "none loaded")
        + (f" (OPENBLAS_CORETYPE={forced} forces them)" if forced else "")
    )
    print(
        f"NumPy sgemm peak: {peak_step / 1e9:.1f} GFLOP/s on the step's shapes, {peak_large / 1e9:.1f} on 2048^2"
    )
    print(
        f"{'implementation':28s} {'ms/step':>8s} {'examples/s':>11s} {'GFLOP/s':>8s} {'roofline':>9s}  compile"
    )
    for name, seconds in medians.items():
        rate = STEP_FLOPS / seconds
        backend = name.split()[-1]
        comp = f"{compile_times[backend]:.1f} s" if name.startswith("pylearn_vae") else ""
        print(
            f"{name:28s} {seconds * 1e3:8.2f} {BATCH / seconds:11.0f} {rate / 1e9:8.1f} {rate / peak_step:9.2f}  {comp}"
        )
    others = {n: s for n, s in medians.items() if not n.startswith("pylearn_vae")}
    for name, seconds in medians.items():
        if name.startswith("pylearn_vae"):
            for other, o_seconds in others.items():
                print(f"{name} / {other}: {seconds / o_seconds:.2f}x the time")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument(
        "--backends",
        default=None,
        help="comma-separated PyTensor modes (default: NUMBA,CVM, and JAX if installed)",
    )
    p.add_argument(
        "--threads", type=int, default=0, help="threads (0: leave the environment alone)"
    )
    p.add_argument("--compare", action="store_true", help="also run PyTorch and JAX if importable")
    p.add_argument(
        "--epoch",
        action="store_true",
        help="also time a 50,000-example epoch with and without its monitoring passes",
    )
    p.add_argument(
        "--cli",
        type=int,
        default=0,
        metavar="N",
        help="also run scripts/train.py yaml/vae_mnist.yaml for N epochs and compare (implies --epoch)",
    )
    args = p.parse_args(argv)
    args.epoch = args.epoch or bool(args.cli)
    from pylearn_vae.speedups import prepare_process

    prepare_process()  # as scripts/train.py does
    if args.threads:
        set_threads(args.threads)
    import warnings

    warnings.filterwarnings("ignore")
    runners, compile_times = {}, {}
    if args.backends is None:
        import importlib.util

        args.backends = "NUMBA,CVM" + (",JAX" if importlib.util.find_spec("jax") else "")
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        runners[f"pylearn_vae {backend}"], compile_times[backend] = ours(backend)
    if args.compare:
        for name, factory in (("PyTorch eager", torch_step), ("JAX jit", jax_step)):
            try:
                runners[name] = factory()
            except ImportError:
                print(f"({name} is not importable; skipped)")
    peak_step = sgemm_peak(step_shapes())
    peak_large = sgemm_peak([((2048, 2048), (2048, 2048))], repeats=3)
    from pylearn_vae import numerics

    with numerics.applied():  # as scripts/train.py trains
        medians = measure(runners, args.steps)
    report_steps(medians, compile_times, peak_step, peak_large)
    if args.epoch:
        print("epoch of 50,000 examples; monitoring: train 50,000 + valid 10,000 + test 10,000")
        print(
            f"monitoring does {monitoring_flop_ratio():.2f}x the training's matrix FLOPs: "
            f"at equal speed per FLOP the epoch takes {1 + monitoring_flop_ratio():.2f}x the training"
        )
        for backend in compile_times:
            report_epochs(backend, args.cli)


if __name__ == "__main__":
    main()
