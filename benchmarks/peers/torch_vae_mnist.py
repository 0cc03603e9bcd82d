"""The seed experiment as a PyTorch user writes it (eager mode).

    python benchmarks/peers/torch_vae_mnist.py [--epochs 150] [--out DIR] [--seed 0]

Same model, data, schedules and monitoring as yaml/vae_mnist.yaml (see
common.py): a hand-written momentum update with the per-minibatch learning
rate, the three sets' negative ELBO after every epoch under
``torch.no_grad`` in batches of 200, and ``torch.save`` of the best model on
the validation objective. The last line of standard output is ``RESULT``
and a JSON object (wall and training times, the final objectives).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

START = time.perf_counter()

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402

torch = c.require("torch")
nn = torch.nn
F = torch.nn.functional


class VAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()

        def linear(i, o, irange):
            layer = nn.Linear(i, o)
            nn.init.uniform_(layer.weight, -irange, irange)
            nn.init.zeros_(layer.bias)
            return layer

        self.enc = linear(c.NVIS, c.HIDDEN, c.HIDDEN_IRANGE)
        self.mu = linear(c.HIDDEN, c.NHID, c.OUTPUT_IRANGE)
        self.log_sigma = linear(c.HIDDEN, c.NHID, c.OUTPUT_IRANGE)
        self.dec1 = linear(c.NHID, c.HIDDEN, c.HIDDEN_IRANGE)
        self.dec2 = linear(c.HIDDEN, c.HIDDEN, c.HIDDEN_IRANGE)
        self.out = linear(c.HIDDEN, c.NVIS, c.OUTPUT_IRANGE)
        self.prior_mu = nn.Parameter(torch.zeros(c.NHID))
        self.prior_log_sigma = nn.Parameter(torch.zeros(c.NHID))

    def forward(self, x):
        """The negative ELBO of each example (one sample of z)."""
        h = F.relu(self.enc(x))
        mu, log_sigma = self.mu(h), self.log_sigma(h)
        z = mu + torch.exp(log_sigma) * torch.randn_like(mu)
        logits = self.out(F.relu(self.dec2(F.relu(self.dec1(z)))))
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        p_mu, p_log_sigma = self.prior_mu, self.prior_log_sigma
        kl = p_log_sigma - log_sigma - 0.5
        kl = kl + 0.5 * (torch.exp(2 * log_sigma) + (mu - p_mu) ** 2) * torch.exp(-2 * p_log_sigma)
        kl = kl.sum(1)
        return rec + kl


def main() -> None:
    args = c.parse_args(__doc__)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    sets = {name: torch.from_numpy(x) for name, x in c.load_splits().items()}
    train = sets["train"]
    model = VAE()
    params = list(model.parameters())
    velocities = [torch.zeros_like(q) for q in params]
    best, step, epoch_seconds, objectives = float("inf"), 0, [], {}
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        momentum = c.momentum(epoch)
        order = torch.from_numpy(rng.permutation(len(train)))
        for i in range(0, len(train) - c.BATCH + 1, c.BATCH):
            loss = model(train[order[i : i + c.BATCH]]).mean()
            grads = torch.autograd.grad(loss, params)
            rate = c.learning_rate(step)
            with torch.no_grad():
                for q, v, g in zip(params, velocities, grads, strict=True):
                    v.mul_(momentum).sub_(rate * g)
                    q.add_(v)
            step += 1
        epoch_seconds.append(time.perf_counter() - start)
        with torch.no_grad():
            objectives = {
                name: float(
                    sum(model(x[i : i + 200]).sum() for i in range(0, len(x), 200)) / len(x)
                )
                for name, x in sets.items()
            }
        c.epoch_line(epoch, epoch_seconds[-1], objectives)
        if objectives["valid"] < best:
            best = objectives["valid"]
            state = model.state_dict()
            c.save_best(
                Path(args.out) / "torch_vae_mnist_best.pt",
                lambda path, state=state: torch.save(state, path),
            )
    c.report(
        wall_seconds=time.perf_counter() - START,
        training_seconds_per_epoch=epoch_seconds,
        objectives=objectives,
        best_valid=best,
        threads=torch.get_num_threads(),
    )


if __name__ == "__main__":
    main()
