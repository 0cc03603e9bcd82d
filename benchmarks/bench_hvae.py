"""Training-step speed of the two-stochastic-layer model, against PyTorch eager and JAX jit.

    python benchmarks/bench_hvae.py [--threads 1,2] [--steps 200] [--peers torch,jax]
                                    [--mode NUMBA] [--check]

The model is yaml/hvae_mnist.yaml's, built from that file: z2 -> z1 -> x with
inference q(z2|x) q(z1|x,z2); each of the four networks two 300-unit gated
layers (``GatedLinear``: one matrix of 600 columns, the linear half times the
sigmoid of the gate half) and linear heads; 40-d z1 and z2; a VampPrior with
500 pseudo-inputs (clipped to [0, 1]) on z2; Bernoulli output. The step is
SGD's with the YAML's Adam, learning rate and batches of 250 (synthetic binary
data, 5,000 rows), on ``VAECriterion`` with one sample and ``kl_weight`` 1
(the end of the KL warm-up): the bottom KL term analytic, the top one (the
VampPrior's) a Monte Carlo estimate.

Three implementations of that step, measured interleaved in one process
(``bench_train.measure``):

* ``pylearn_vae``: the library's compiled training step, as
  ``scripts/train.py`` runs it (on ``--mode``, else PyTensor's default);
* ``PyTorch``: eager ``nn.Module`` networks and ``torch.optim.Adam``, written
  as a PyTorch user would;
* ``JAX``: one ``jax.jit`` function (loss, gradient and a hand-written Adam).

The peers start from our initial parameters. As their users would, they
evaluate the VampPrior's density by broadcasting the batch against the 500
components ((250, 500, 40) tensors); ours uses matrix products.

Each thread count of ``--threads`` runs in a fresh subprocess pinned to that
many cores (``bench_train.set_threads``); the table gives the median
milliseconds per step of each implementation and the ratios pylearn_vae /
PyTorch and pylearn_vae / JAX (below 1: ours is faster). A peer that is not
importable is skipped with a note.

``--check`` first (in its own process) copies our initial parameters into the
peers and compares, with the same fixed noise, the loss and its gradient on
one batch and the losses of three Adam steps; the exit status is 1 when a
difference exceeds float32 tolerance. With ``--steps 0`` it only checks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_train import measure, set_threads  # noqa: E402  (shared timing and thread set-up)

YAML = Path(__file__).resolve().parents[1] / "yaml" / "hvae_mnist.yaml"
NVIS, NZ1, NZ2, HIDDEN, PSEUDO = 784, 40, 40, 300, 500
KL_WEIGHT = 1.0
NUM_EXAMPLES = 5000
CHECK_STEPS = 3
# float32 tolerances of --check: relative difference of the losses, and of a
# gradient (the norm of the difference over the norm of ours, per parameter).
LOSS_RTOL, GRAD_RTOL = 1e-5, 1e-3
RESULT = "RESULT "  # prefix of a worker's JSON line on its standard output
LABELS = {"ours": "pylearn_vae", "torch": "PyTorch", "jax": "JAX"}


@dataclass
class Implementation:
    """One implementation of the step.

    ``run()`` does one training step on the next minibatch with fresh noise;
    ``step(i, eps2, eps1)`` one on minibatch ``i`` with the given noise,
    returning the loss before the update; ``loss_and_grads(i, eps2, eps1)``
    the loss and its gradient by parameter (our names and layouts), with no
    update.
    """

    run: Callable[[], None] | None
    step: Callable | None = None
    loss_and_grads: Callable | None = None


@dataclass
class Settings:
    """What the three implementations share: the data, its minibatches and the optimiser."""

    x: object  # (NUM_EXAMPLES, NVIS) float32 array
    batches: list  # index arrays of the minibatches
    learning_rate: float
    beta1: float
    beta2: float
    epsilon: float


# -- pylearn_vae -----------------------------------------------------------------------


def yaml_parts():
    """yaml/hvae_mnist.yaml's parsed model (not built), batch size, learning rate and learning rule."""
    from pylearn_vae.config import yaml_parse

    train = yaml_parse.load_path(
        YAML, environ={"PYLEARN2_TRAIN_FILE_FULL_STEM": "unused"}, instantiate=False
    )
    algorithm = train.kwargs["algorithm"].kwargs
    rule = yaml_parse.instantiate(algorithm["learning_rule"])
    return (
        train.kwargs["model"],
        int(algorithm["batch_size"]),
        float(algorithm["learning_rate"]),
        rule,
    )


def settings_and_model():
    """The shared settings, a fresh model of the YAML and its learning rule."""
    import numpy as np

    from pylearn_vae.config import yaml_parse

    model_proxy, batch_size, learning_rate, rule = yaml_parts()
    x = (np.random.default_rng(1).random((NUM_EXAMPLES, NVIS)) < 0.13).astype("float32")
    order = np.random.default_rng(2).permutation(NUM_EXAMPLES)
    batches = [
        order[i : i + batch_size] for i in range(0, NUM_EXAMPLES - batch_size + 1, batch_size)
    ]
    settings = Settings(x, batches, learning_rate, rule.beta1, rule.beta2, rule.epsilon)
    return settings, yaml_parse.instantiate(model_proxy), rule


def initial_values(model) -> dict:
    """Copies of the model's parameter values, by name."""
    return {p.name: p.get_value() for p in model.get_params()}


def fix_noise(model, batch_size: int):
    """Replace the model's two reparametrization noises by shared variables
    (for --check): returns a function setting them to (eps2, eps1)."""
    import numpy as np
    import pytensor

    shared = {}
    for name, nz in (("posterior", NZ2), ("bottom_posterior", NZ1)):
        network = getattr(model, name)
        value = np.zeros((1, batch_size, nz), "float32")  # (samples, batch, latent)
        shared[name] = pytensor.shared(value, name=f"fixed_{name}_noise")
        # An instance attribute shadows the method for this model only.
        network.sample_from_epsilon = lambda shape, v=shared[name]: v

    def set_noise(eps2, eps1) -> None:
        shared["posterior"].set_value(eps2[None])
        shared["bottom_posterior"].set_value(eps1[None])

    return set_noise


def ours(model, rule, settings: Settings, mode, fixed_noise: bool) -> tuple[Implementation, float]:
    """Our step as SGD runs it (bench_train.sgd_step's pattern, with the
    kl_weight cost), and the seconds from set-up to the end of the first step."""
    import pytensor
    import pytensor.tensor as pt

    from pylearn_vae.compile import resolve_mode
    from pylearn_vae.costs.vae import VAECriterion
    from pylearn_vae.datasets import DenseDesignMatrix
    from pylearn_vae.training_algorithms.sgd import SGD

    batch_size = len(settings.batches[0])
    set_noise = fix_noise(model, batch_size) if fixed_noise else None
    # kl_weight given: training minimises the weighted bound, as under KLWarmUp.
    cost = VAECriterion(1, kl_weight=KL_WEIGHT)
    algo = SGD(
        learning_rate=settings.learning_rate,
        cost=cost,
        batch_size=batch_size,
        learning_rule=rule,
        theano_function_mode=mode,
    )
    loss_and_grads = None
    if fixed_noise:
        X = pt.matrix("X", dtype="float32")
        loss = cost.training_expr(model, X)
        params = model.get_params()
        outputs = [loss, *pt.grad(loss, params)]
        compiled = pytensor.function([X], outputs, mode=resolve_mode(mode))

        def loss_and_grads(i, eps2, eps1):
            set_noise(eps2, eps1)
            value, *grads = compiled(settings.x[settings.batches[i]])
            return float(value), {p.name: g for p, g in zip(params, grads, strict=True)}

    start = time.perf_counter()
    algo.setup(model, DenseDesignMatrix(X=settings.x))
    step_function = algo._step_function(batch_size)
    if fixed_noise:

        def step(i, eps2, eps1):
            set_noise(eps2, eps1)
            return float(step_function(settings.batches[i]))

        return Implementation(run=None, step=step, loss_and_grads=loss_and_grads), 0.0
    float(step_function(settings.batches[0]))  # Numba compiles at the first call
    setup_seconds = time.perf_counter() - start
    state = {"i": 1}

    def run():
        # float() waits for the result, as training's finiteness check does.
        float(step_function(settings.batches[state["i"] % len(settings.batches)]))
        state["i"] += 1

    return Implementation(run=run), setup_seconds


# -- PyTorch eager ---------------------------------------------------------------------


def torch_peer(init: dict, settings: Settings) -> Implementation:
    """The model and step in PyTorch eager, starting from ``init`` (our values)."""
    import math

    import numpy as np
    import torch
    from torch import nn

    F = nn.functional
    torch.manual_seed(0)

    class GatedLinear(nn.Linear):
        """One linear map to 2 * dim units: the first half times the sigmoid of the second."""

        def __init__(self, n_in, dim):
            super().__init__(n_in, 2 * dim)

        def forward(self, h):
            a, gate = super().forward(h).chunk(2, dim=-1)
            return a * torch.sigmoid(gate)

    class Network(nn.Module):
        """Two gated layers, then one linear head per output."""

        def __init__(self, n_in, n_out, heads):
            super().__init__()
            self.h_1, self.h_2 = GatedLinear(n_in, HIDDEN), GatedLinear(HIDDEN, HIDDEN)
            self.head_names = heads
            for name in heads:
                self.add_module(name, nn.Linear(HIDDEN, n_out))

        def forward(self, h):
            h = self.h_2(self.h_1(h))
            return [getattr(self, name)(h) for name in self.head_names]

    def log_normal(z, mu, log_sigma):
        return -0.5 * (
            math.log(2 * math.pi) + 2 * log_sigma + ((z - mu) * torch.exp(-log_sigma)) ** 2
        ).sum(-1)

    class HierarchicalVAE(nn.Module):
        def __init__(self):
            super().__init__()
            gaussian = ("mu", "log_sigma")
            self.posterior = Network(NVIS, NZ2, gaussian)  # q(z2 | x)
            self.bottom_posterior = Network(NVIS + NZ2, NZ1, gaussian)  # q(z1 | x, z2)
            self.bottom_prior = Network(NZ2, NZ1, gaussian)  # p(z1 | z2)
            self.conditional = Network(NZ1 + NZ2, NVIS, ("mu",))  # p(x | z1, z2): logits
            self.prior_pseudo_inputs = nn.Parameter(torch.empty(PSEUDO, NVIS))  # VampPrior

        def log_prior(self, z2):
            mu, log_sigma = self.posterior(self.prior_pseudo_inputs.clamp(0, 1))
            log_components = log_normal(z2[:, None, :], mu, log_sigma)  # (batch, K)
            return torch.logsumexp(log_components, dim=-1) - math.log(PSEUDO)

        def forward(self, x, eps2, eps1, kl_weight):
            mu2, log_sigma2 = self.posterior(x)
            z2 = mu2 + torch.exp(log_sigma2) * eps2
            mu1, log_sigma1 = self.bottom_posterior(torch.cat([x, z2], dim=-1))
            z1 = mu1 + torch.exp(log_sigma1) * eps1
            prior_mu1, prior_log_sigma1 = self.bottom_prior(z2)
            (logits,) = self.conditional(torch.cat([z1, z2], dim=-1))
            reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
            kl_top = log_normal(z2, mu2, log_sigma2) - self.log_prior(z2)  # Monte Carlo
            kl_bottom = (
                prior_log_sigma1
                - log_sigma1
                + 0.5
                * (torch.exp(2 * log_sigma1) + (mu1 - prior_mu1) ** 2)
                * torch.exp(-2 * prior_log_sigma1)
                - 0.5
            ).sum(-1)
            return (reconstruction + kl_weight * (kl_top + kl_bottom)).mean()

    model = HierarchicalVAE()
    names = {}  # torch name -> (our name, transposed)
    for name, _ in model.named_parameters():
        if "." in name:  # posterior.h_1.weight -> posterior_h_1_W (transposed)
            network, layer, kind = name.split(".")
            names[name] = (
                f"{network}_{layer}_{'W' if kind == 'weight' else 'b'}",
                kind == "weight",
            )
        else:
            names[name] = (name, False)
    if sorted(ours for ours, _ in names.values()) != sorted(init):
        raise RuntimeError(
            f"PyTorch parameters {sorted(names)} do not map onto ours {sorted(init)}"
        )
    with torch.no_grad():
        for name, p in model.named_parameters():
            ours_name, transposed = names[name]
            value = init[ours_name].T if transposed else init[ours_name]
            p.copy_(torch.from_numpy(np.ascontiguousarray(value)))
    opt = torch.optim.Adam(
        model.parameters(),
        lr=settings.learning_rate,
        betas=(settings.beta1, settings.beta2),
        eps=settings.epsilon,
    )
    x = torch.from_numpy(settings.x)
    batches = [torch.from_numpy(b) for b in settings.batches]
    batch_size = len(settings.batches[0])

    def update(xb, eps2, eps1):
        loss = model(xb, eps2, eps1, KL_WEIGHT)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    state = {"i": 0}

    def run():
        xb = x[batches[state["i"] % len(batches)]]
        float(update(xb, torch.randn(batch_size, NZ2), torch.randn(batch_size, NZ1)))
        state["i"] += 1

    def step(i, eps2, eps1):
        return float(update(x[batches[i]], torch.from_numpy(eps2), torch.from_numpy(eps1)))

    def loss_and_grads(i, eps2, eps1):
        model.zero_grad(set_to_none=True)
        loss = model(x[batches[i]], torch.from_numpy(eps2), torch.from_numpy(eps1), KL_WEIGHT)
        loss.backward()
        grads = {}
        for name, p in model.named_parameters():
            ours_name, transposed = names[name]
            g = p.grad.numpy()
            grads[ours_name] = g.T if transposed else g
        model.zero_grad(set_to_none=True)
        return float(loss.detach()), grads

    return Implementation(run=run, step=step, loss_and_grads=loss_and_grads)


# -- JAX jit ---------------------------------------------------------------------------


def jax_peer(init: dict, settings: Settings) -> Implementation:
    """The model and step as one jitted JAX function, starting from ``init`` (our values)."""
    import functools
    import math

    import jax
    import jax.numpy as jnp

    tree_map = jax.tree_util.tree_map
    lr, b1, b2, eps = settings.learning_rate, settings.beta1, settings.beta2, settings.epsilon
    batch_size = len(settings.batches[0])

    def gated(p, layer, h):
        a = h @ p[f"{layer}_W"] + p[f"{layer}_b"]
        return a[:, :HIDDEN] * jax.nn.sigmoid(a[:, HIDDEN:])

    def network(p, name, h, heads=("mu", "log_sigma")):
        h = gated(p, f"{name}_h_2", gated(p, f"{name}_h_1", h))
        return [h @ p[f"{name}_{head}_W"] + p[f"{name}_{head}_b"] for head in heads]

    def log_normal(z, mu, log_sigma):
        return -0.5 * (
            math.log(2 * math.pi) + 2 * log_sigma + ((z - mu) * jnp.exp(-log_sigma)) ** 2
        ).sum(-1)

    def loss_fn(p, xb, eps2, eps1):
        mu2, log_sigma2 = network(p, "posterior", xb)  # q(z2 | x)
        z2 = mu2 + jnp.exp(log_sigma2) * eps2
        mu1, log_sigma1 = network(p, "bottom_posterior", jnp.concatenate([xb, z2], -1))
        z1 = mu1 + jnp.exp(log_sigma1) * eps1
        prior_mu1, prior_log_sigma1 = network(p, "bottom_prior", z2)  # p(z1 | z2)
        (logits,) = network(p, "conditional", jnp.concatenate([z1, z2], -1), ("mu",))
        reconstruction = (jax.nn.softplus(logits) - xb * logits).sum(-1)
        # VampPrior: the posterior q(z2 | u_k) at the clipped pseudo-inputs, mixed.
        k_mu, k_log_sigma = network(p, "posterior", jnp.clip(p["prior_pseudo_inputs"], 0.0, 1.0))
        log_prior = jax.nn.logsumexp(log_normal(z2[:, None, :], k_mu, k_log_sigma), -1) - math.log(
            PSEUDO
        )
        kl_top = log_normal(z2, mu2, log_sigma2) - log_prior  # Monte Carlo
        kl_bottom = (
            prior_log_sigma1
            - log_sigma1
            + 0.5
            * (jnp.exp(2 * log_sigma1) + (mu1 - prior_mu1) ** 2)
            * jnp.exp(-2 * prior_log_sigma1)
            - 0.5
        ).sum(-1)
        return (reconstruction + KL_WEIGHT * (kl_top + kl_bottom)).mean()

    def adam(state, xb, eps2, eps1):
        params, m, v, t = state
        loss, g = jax.value_and_grad(loss_fn)(params, xb, eps2, eps1)
        t = t + 1.0
        m = tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        c1, c2 = 1 - b1**t, 1 - b2**t
        params = tree_map(
            lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, m, v
        )
        return (params, m, v, t), loss

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def train_step(state, key, data, index):
        key, k2, k1 = jax.random.split(key, 3)
        eps2 = jax.random.normal(k2, (batch_size, NZ2), jnp.float32)
        eps1 = jax.random.normal(k1, (batch_size, NZ1), jnp.float32)
        state, loss = adam(state, data[index], eps2, eps1)
        return state, key, loss

    fixed_step = jax.jit(adam)
    loss_and_grad = jax.jit(jax.value_and_grad(loss_fn))
    params = {name: jnp.asarray(value) for name, value in init.items()}
    zeros = tree_map(jnp.zeros_like, params)
    holder = {
        "state": (params, zeros, tree_map(jnp.zeros_like, params), jnp.float32(0.0)),
        "key": jax.random.PRNGKey(0),
        "i": 0,
    }
    data = jnp.asarray(settings.x)
    batches = [jnp.asarray(b) for b in settings.batches]

    def run():
        index = batches[holder["i"] % len(batches)]
        holder["state"], holder["key"], loss = train_step(
            holder["state"], holder["key"], data, index
        )
        float(loss)  # waits for the step
        holder["i"] += 1

    def step(i, eps2, eps1):
        holder["state"], loss = fixed_step(holder["state"], data[batches[i]], eps2, eps1)
        return float(loss)

    def loss_and_grads(i, eps2, eps1):
        loss, grads = loss_and_grad(holder["state"][0], data[batches[i]], eps2, eps1)
        return float(loss), {name: jax.device_get(g) for name, g in grads.items()}

    return Implementation(run=run, step=step, loss_and_grads=loss_and_grads)


PEERS = {"torch": torch_peer, "jax": jax_peer}


def build_peers(names, init, settings) -> tuple[dict, list]:
    """The importable peers among ``names``, and a note for each skipped one."""
    built, notes = {}, []
    for name in names:
        try:
            built[name] = PEERS[name](init, settings)
        except ImportError as exc:
            notes.append(f"{LABELS[name]} skipped: not importable ({exc})")
    return built, notes


def versions(names, mode) -> list:
    import pytensor

    from pylearn_vae.compile import resolve_mode

    linker = type(resolve_mode(mode).linker).__name__
    found = [f"PyTensor {pytensor.__version__} ({linker})"]
    for name in names:
        if name == "torch":
            import torch

            found.append(f"PyTorch {torch.__version__}")
        elif name == "jax":
            import jax

            found.append(f"JAX {jax.__version__}")
    return found


def torch_threads(peers) -> str:
    if "torch" not in peers:
        return ""
    import torch

    return f"; PyTorch on {torch.get_num_threads()} thread(s)"


# -- the workers -----------------------------------------------------------------------


def time_worker(args) -> dict:
    """Median seconds per step of each implementation on this process's threads."""
    from pylearn_vae import numerics

    settings, model, rule = settings_and_model()
    init = initial_values(model)  # before our first step changes them
    runners = {}
    runners_ours, setup_seconds = ours(model, rule, settings, args.mode, fixed_noise=False)
    runners["ours"] = runners_ours.run
    peers, notes = build_peers(args.peers, init, settings)
    runners.update({name: peer.run for name, peer in peers.items()})
    with numerics.applied():  # as scripts/train.py trains
        medians = measure(runners, args.steps)
    return {
        "threads": args.threads,
        "ms": {name: 1000 * seconds for name, seconds in medians.items()},
        "detail": f"our set-up and first step {setup_seconds:.1f} s" + torch_threads(peers),
        "notes": notes + versions(peers, args.mode),
    }


def relative(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30))


def check_worker(args) -> dict:
    """Loss, gradients and a few Adam steps of the three from the same start and noise."""
    import numpy as np

    from pylearn_vae import numerics

    settings, model, rule = settings_and_model()
    init = initial_values(model)
    ours_impl, _ = ours(model, rule, settings, args.mode, fixed_noise=True)
    peers, notes = build_peers(args.peers, init, settings)
    rng = np.random.default_rng(3)
    batch_size = len(settings.batches[0])
    noise = [
        (
            rng.standard_normal((batch_size, NZ2)).astype("float32"),
            rng.standard_normal((batch_size, NZ1)).astype("float32"),
        )
        for _ in range(CHECK_STEPS)
    ]
    impls = {"ours": ours_impl, **peers}
    losses, grads, trajectories = {}, {}, {}
    with numerics.applied():
        for name, impl in impls.items():
            losses[name], grads[name] = impl.loss_and_grads(0, *noise[0])
            trajectories[name] = [impl.step(i, *noise[i]) for i in range(CHECK_STEPS)]
    rows, ok = [], True
    for name in peers:
        loss_diff = relative(losses["ours"], losses[name])
        grad_diffs = {p: relative(grads["ours"][p], grads[name][p]) for p in init}
        worst = max(grad_diffs, key=grad_diffs.get)
        step_diff = max(
            relative(a, b) for a, b in zip(trajectories["ours"], trajectories[name], strict=True)
        )
        passed = (
            loss_diff <= LOSS_RTOL and grad_diffs[worst] <= GRAD_RTOL and step_diff <= LOSS_RTOL
        )
        ok = ok and passed
        rows.append(
            {
                "peer": name,
                "loss": losses[name],
                "loss_abs_diff": abs(losses[name] - losses["ours"]),
                "loss_rel_diff": loss_diff,
                "grad_rel_diff": grad_diffs[worst],
                "grad_worst": worst,
                "steps": trajectories[name],
                "steps_rel_diff": step_diff,
                "passed": passed,
            }
        )
    return {
        "loss": losses["ours"],
        "steps": trajectories["ours"],
        "rows": rows,
        "passed": ok,
        "notes": notes + versions(peers, args.mode),
    }


# -- the driver ------------------------------------------------------------------------


def spawn(args, job: str, threads: int) -> dict:
    """Run ``job`` in a fresh process on ``threads`` cores; return its result."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        job,
        "--threads",
        str(threads),
        "--steps",
        str(args.steps),
        "--peers",
        ",".join(args.peers),
    ]
    if args.mode:
        command += ["--mode", args.mode]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode or not lines:
        sys.stdout.write(done.stdout)
        raise SystemExit(
            f"the {job} process on {threads} thread(s) failed (exit status {done.returncode})"
        )
    return json.loads(lines[-1][len(RESULT) :])


def print_check(result: dict) -> None:
    print(f"--check (same start, same noise): pylearn_vae loss {result['loss']:.6f}")
    print("  Adam steps, loss before each: " + ", ".join(f"{v:.6f}" for v in result["steps"]))
    for row in result["rows"]:
        print(
            f"  {LABELS[row['peer']]}: loss {row['loss']:.6f} (|diff| {row['loss_abs_diff']:.2e}, "
            f"relative {row['loss_rel_diff']:.1e}); gradient: largest relative difference "
            f"{row['grad_rel_diff']:.1e} ({row['grad_worst']}); {CHECK_STEPS} Adam steps: "
            f"largest relative loss difference {row['steps_rel_diff']:.1e} -> "
            f"{'ok' if row['passed'] else 'MISMATCH'}"
        )
    for note in result["notes"]:
        print(f"  ({note})")


def print_table(results: list, peers) -> None:
    names = ["ours", *peers]
    header = f"{'threads':>7}" + "".join(f"{LABELS[n] + ' ms':>16}" for n in names)
    header += "".join(f"{'ours/' + LABELS[n]:>14}" for n in peers)
    print(header)
    for result in results:
        ms = result["ms"]
        line = f"{result['threads']:>7}"
        line += "".join(f"{ms[n]:>16.2f}" if n in ms else f"{'-':>16}" for n in names)
        line += "".join(f"{ms['ours'] / ms[n]:>14.2f}" if n in ms else f"{'-':>14}" for n in peers)
        print(line, flush=True)
    notes = dict.fromkeys(note for result in results for note in result["notes"])
    for result in results:
        print(f"(threads {result['threads']}: {result['detail']})")
    for note in notes:
        print(f"({note})")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--steps", type=int, default=200, help="timed steps per implementation")
    p.add_argument("--peers", default="torch,jax", help="comma-separated peers: torch, jax")
    p.add_argument("--mode", default=None, help="PyTensor mode of ours (default: PyTensor's)")
    p.add_argument("--check", action="store_true", help="first compare the three numerically")
    p.add_argument("--worker", choices=("time", "check"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.peers = [name for name in args.peers.split(",") if name]
    unknown = [name for name in args.peers if name not in PEERS]
    if unknown:
        p.error(f"unknown peers {unknown}: choose among {sorted(PEERS)}")
    try:
        thread_counts = [int(t) for t in args.threads.split(",") if t]
    except ValueError:
        p.error(f"--threads takes comma-separated integers, got {args.threads!r}")
    if args.worker:
        set_threads(thread_counts[0])  # re-executes this process with the variables set
        from pylearn_vae.speedups import prepare_process

        prepare_process()  # as scripts/train.py does
        args.threads = thread_counts[0]
        job = check_worker if args.worker == "check" else time_worker
        print(RESULT + json.dumps(job(args)), flush=True)
        return
    print(
        f"yaml/hvae_mnist.yaml's model and step (Adam, kl_weight {KL_WEIGHT:g}), "
        f"{NUM_EXAMPLES} synthetic examples"
    )
    passed = True
    if args.check:
        check = spawn(args, "check", thread_counts[0])
        print_check(check)
        passed = check["passed"]
    if args.steps > 0:
        results = [spawn(args, "time", threads) for threads in thread_counts]
        timed = 10 * max(
            1, args.steps // 10
        )  # bench_train.measure: 10 rounds, after 20 warm-up steps
        print(
            f"median ms per step ({timed} timed steps each, interleaved; "
            "one process per thread count)"
        )
        print_table(results, args.peers)
    if not passed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
