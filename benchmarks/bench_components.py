"""Training-step speed of the models beyond the seed, against the same models in PyTorch.

    python benchmarks/bench_components.py [--threads 1] [--steps 200] [--models vamp,flow]

Models (784 inputs, batch 100, Adam):

* ``vamp``: yaml/vamp_vae_mnist.yaml's model: two 300-unit gated layers in the
  encoder and the decoder, 40-d latent, a VampPrior with 500 pseudo-inputs,
  a posterior with one Householder reflection, Bernoulli output.
* ``flow``: the same with the seed's diagonal Gaussian prior (the Householder
  posterior alone: no pseudo-inputs to encode).

For each, the median milliseconds per step of pylearn_vae on the default
backend and of PyTorch eager (if importable), measured interleaved in one run,
and their ratio. ``--threads`` sets the BLAS and compute threads (the script
re-executes itself with the right environment, as bench_train.py does).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_train import measure, set_threads, sgd_step  # noqa: E402  (shared set-up and timing)

NVIS, NHID, HIDDEN, BATCH, PSEUDO = 784, 40, 300, 100, 500


def data(n=5000):
    import numpy as np

    return (np.random.default_rng(1).random((n, NVIS)) < 0.13).astype("float32")


def model(vamp: bool):
    from pylearn_vae.models.mlp import MLP, GatedLinear
    from pylearn_vae.models.vae import VAE
    from pylearn_vae.models.vae.conditional import BernoulliVector, HouseholderFlowGaussian
    from pylearn_vae.models.vae.prior import DiagonalGaussianPrior, VampPrior

    def mlp(name, prefix):
        layers = [GatedLinear(layer_name=f"{prefix}{i}", dim=HIDDEN, istdev=0.05) for i in (1, 2)]
        return MLP(layer_name=name, layers=layers)

    return VAE(
        nvis=NVIS,
        nhid=NHID,
        seed=0,
        prior=VampPrior(num_pseudo_inputs=PSEUDO) if vamp else DiagonalGaussianPrior(),
        conditional=BernoulliVector(name="conditional", mlp=mlp("decoder", "h_")),
        posterior=HouseholderFlowGaussian(
            name="posterior", num_flows=1, mlp=mlp("encoder", "h_e_")
        ),
    )


def ours(vamp: bool):
    from pylearn_vae.training_algorithms.learning_rule import Adam

    run, _ = sgd_step(None, model(vamp), data(), BATCH, Adam())
    return run


def torch_model_step(vamp: bool):
    import math

    import numpy as np
    import torch

    torch.manual_seed(0)
    F = torch.nn.functional
    x = torch.from_numpy(data())

    def gated(i):
        return torch.nn.Linear(i, 2 * HIDDEN)

    def run_gated(layers, h):
        for layer in layers:
            a, g = layer(h).chunk(2, dim=-1)
            h = a * torch.sigmoid(g)
        return h

    enc = torch.nn.ModuleList([gated(NVIS), gated(HIDDEN)])
    dec = torch.nn.ModuleList([gated(NHID), gated(HIDDEN)])
    heads = torch.nn.Linear(HIDDEN, 3 * NHID)  # mu, log sigma, reflection vector
    out = torch.nn.Linear(HIDDEN, NVIS)
    pseudo = torch.nn.Parameter(0.05 + 0.01 * torch.randn(PSEUDO, NVIS))
    prior = torch.nn.Parameter(torch.zeros(2, NHID))  # the diagonal prior's mu, log sigma
    modules = [enc, dec, heads, out]
    params = [p for m in modules for p in m.parameters()] + [pseudo if vamp else prior]
    opt = torch.optim.Adam(params, lr=5e-4)
    order = np.random.default_rng(2).permutation(len(x))
    log2pi = math.log(2 * math.pi)

    def encode(xb):
        mu, ls, v = heads(run_gated(enc, xb)).chunk(3, dim=-1)
        return mu, ls, v

    def reflect(z, v):
        return z - 2 * v * (z * v).sum(-1, keepdim=True) / (v * v).sum(-1, keepdim=True)

    def log_gauss(z, mu, ls):
        return -0.5 * (log2pi + 2 * ls + ((z - mu) * torch.exp(-ls)) ** 2).sum(-1)

    state = {"i": 0}

    def run():
        i = state["i"] % (len(x) // BATCH)
        xb = x[order[i * BATCH : (i + 1) * BATCH]]
        mu, ls, v = encode(xb)
        z0 = mu + torch.exp(ls) * torch.randn_like(mu)
        z = reflect(z0, v)
        log_q = log_gauss(z0, mu, ls)
        if vamp:
            pmu, pls, pv = encode(pseudo.clamp(0, 1))
            zk = reflect(z[:, None, :], pv[None])  # back through each component's reflection
            log_p = torch.logsumexp(log_gauss(zk, pmu[None], pls[None]), -1) - math.log(PSEUDO)
        else:
            log_p = log_gauss(z, prior[0], prior[1])
        logits = out(run_gated(dec, z))
        rec = F.binary_cross_entropy_with_logits(logits, xb, reduction="sum") / BATCH
        loss = rec + (log_q - log_p).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state["i"] += 1

    return run


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--models", default="vamp,flow")
    args = p.parse_args(argv)
    if args.threads:
        set_threads(args.threads)
    from pylearn_vae import numerics
    from pylearn_vae.speedups import prepare_process

    prepare_process()
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    print(f"threads: {args.threads}; batch {BATCH}; PyTorch {'found' if have_torch else 'absent'}")
    print(f"{'model':<8}{'pylearn_vae ms':>16}{'PyTorch ms':>12}{'ratio':>8}")
    for name in args.models.split(","):
        vamp = name == "vamp"
        runners = {"ours": ours(vamp)}
        if have_torch:
            runners["torch"] = torch_model_step(vamp)
        with numerics.applied():
            times = measure(runners, args.steps)
        ms = {k: 1000 * t for k, t in times.items()}
        torch_ms = f"{ms['torch']:.2f}" if have_torch else "-"
        ratio = f"{ms['ours'] / ms['torch']:.2f}" if have_torch else "-"
        print(f"{name:<8}{ms['ours']:>16.2f}{torch_ms:>12}{ratio:>8}", flush=True)


if __name__ == "__main__":
    main()
