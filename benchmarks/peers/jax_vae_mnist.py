"""The seed experiment as a JAX user writes it: a jit-compiled step and a
jit-compiled evaluation, a Python loop over the minibatches.

    python benchmarks/peers/jax_vae_mnist.py [--epochs 150] [--out DIR] [--seed 0]

Same model, data, schedules and monitoring as yaml/vae_mnist.yaml (see
common.py); the best model on the validation objective is saved with
``numpy.savez``. The last line of standard output is ``RESULT`` and a JSON
object (wall and training times, the final objectives).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

START = time.perf_counter()

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402

jax = c.require("jax")
jnp = jax.numpy

LAYERS = [  # (inputs, outputs, init range): encoder, mu, log_sigma, decoder 1, 2, output
    (c.NVIS, c.HIDDEN, c.HIDDEN_IRANGE),
    (c.HIDDEN, c.NHID, c.OUTPUT_IRANGE),
    (c.HIDDEN, c.NHID, c.OUTPUT_IRANGE),
    (c.NHID, c.HIDDEN, c.HIDDEN_IRANGE),
    (c.HIDDEN, c.HIDDEN, c.HIDDEN_IRANGE),
    (c.HIDDEN, c.NVIS, c.OUTPUT_IRANGE),
]


def init(rng: np.random.Generator):
    layers = [
        (
            jnp.asarray(rng.uniform(-r, r, (i, o)).astype(np.float32)),
            jnp.zeros(o, jnp.float32),
        )
        for i, o, r in LAYERS
    ]
    prior = (jnp.zeros(c.NHID, jnp.float32), jnp.zeros(c.NHID, jnp.float32))  # mean, log sigma
    return [*layers, prior]


def negative_elbo(params, x, key):
    """The negative ELBO of each example (one sample of z)."""
    (We, be), (Wm, bm), (Ws, bs), (W1, b1), (W2, b2), (Wo, bo), (p_mu, p_log_sigma) = params
    h = jax.nn.relu(x @ We + be)
    mu, log_sigma = h @ Wm + bm, h @ Ws + bs
    z = mu + jnp.exp(log_sigma) * jax.random.normal(key, mu.shape, mu.dtype)
    logits = jax.nn.relu(jax.nn.relu(z @ W1 + b1) @ W2 + b2) @ Wo + bo
    rec = (jax.nn.softplus(logits) - x * logits).sum(1)
    kl = p_log_sigma - log_sigma - 0.5
    kl = kl + 0.5 * (jnp.exp(2 * log_sigma) + (mu - p_mu) ** 2) * jnp.exp(-2 * p_log_sigma)
    kl = kl.sum(1)
    return rec + kl


@jax.jit
def update(params, velocities, x, key, rate, momentum):
    grads = jax.grad(lambda p: negative_elbo(p, x, key).mean())(params)
    velocities = jax.tree_util.tree_map(lambda v, g: momentum * v - rate * g, velocities, grads)
    params = jax.tree_util.tree_map(lambda p, v: p + v, params, velocities)
    return params, velocities


@jax.jit
def total(params, x, key):
    return negative_elbo(params, x, key).sum()


def main() -> None:
    args = c.parse_args(__doc__)
    rng = np.random.default_rng(args.seed)
    key = jax.random.PRNGKey(args.seed)
    sets = {name: jnp.asarray(x) for name, x in c.load_splits().items()}
    train = sets["train"]
    params = init(rng)
    velocities = jax.tree_util.tree_map(jnp.zeros_like, params)
    best, step, epoch_seconds, objectives = float("inf"), 0, [], {}
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        momentum = jnp.float32(c.momentum(epoch))
        order = rng.permutation(train.shape[0])
        for i in range(0, train.shape[0] - c.BATCH + 1, c.BATCH):
            key, sub = jax.random.split(key)
            rate = jnp.float32(c.learning_rate(step))
            params, velocities = update(
                params, velocities, train[order[i : i + c.BATCH]], sub, rate, momentum
            )
            step += 1
        jax.block_until_ready(params)
        epoch_seconds.append(time.perf_counter() - start)
        objectives = {}
        for name, x in sets.items():
            sums = []
            for i in range(0, x.shape[0], 200):
                key, sub = jax.random.split(key)
                sums.append(total(params, x[i : i + 200], sub))
            objectives[name] = float(sum(float(s) for s in sums)) / x.shape[0]
        c.epoch_line(epoch, epoch_seconds[-1], objectives)
        if objectives["valid"] < best:
            best = objectives["valid"]
            arrays = [np.asarray(a) for layer in params for a in layer]
            c.save_best(
                Path(args.out) / "jax_vae_mnist_best.npz",
                lambda path, arrays=arrays: np.savez(path, *arrays),
            )
    c.report(
        wall_seconds=time.perf_counter() - START,
        training_seconds_per_epoch=epoch_seconds,
        objectives=objectives,
        best_valid=best,
    )


if __name__ == "__main__":
    main()
