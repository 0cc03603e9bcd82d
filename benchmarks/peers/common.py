"""What the peer scripts share: the seed experiment's settings, the data, the
schedules, the report line, one-line failures and a save that replaces a
symlink instead of writing through it. Written as a user of PyTorch or JAX would
write their own helpers; it imports neither library nor this package.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

# yaml/vae_mnist.yaml: 784-200 ReLU encoder, 200-d Gaussian latent with a
# learned diagonal Gaussian prior (mean and log sigma, from 0: the VAE's
# learn_prior, on by default as in Pylearn2), 200-200 ReLU decoder, Bernoulli
# output; SGD, batch 200, learning rate 1e-3 divided
# by 1.00005 after every minibatch (at least 1e-5), momentum 0.05 for five
# epochs then 0.95; the three sets monitored after every epoch; the best
# model on the validation objective saved.
NVIS, NHID, HIDDEN, BATCH = 784, 200, 200, 200
LR, DECAY, MIN_LR = 1e-3, 1.00005, 1e-5
INIT_MOMENTUM, FINAL_MOMENTUM, MOMENTUM_EPOCH = 0.05, 0.95, 6
HIDDEN_IRANGE, OUTPUT_IRANGE = 0.001, 0.01
SPLITS = ("train", "valid", "test")


def data_folder() -> Path:
    root = os.environ.get("PYLEARN2_DATA_PATH") or os.path.join(
        os.environ.get("XDG_DATA_HOME", os.path.expanduser("~/.local/share")), "pylearn_vae"
    )
    return Path(root) / "binarized_mnist"


def fail(message: str) -> None:
    """End the script with one line on standard error (no traceback)."""
    print(f"error: {message!s}".encode("ascii", "backslashreplace").decode(), file=sys.stderr)
    raise SystemExit(2)


def require(module: str):
    """Import ``module`` (torch or jax), or end the script saying it is missing."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        fail(f"{module} is not installed (pip install {module})")


def load_splits() -> dict[str, np.ndarray]:
    """The three splits as float32 arrays (installed by scripts/download_binarized_mnist.py)."""
    folder = data_folder()
    try:
        return {
            name: np.load(folder / f"binarized_mnist_{name}.npy", allow_pickle=False).astype(
                np.float32
            )
            for name in SPLITS
        }
    except (OSError, ValueError) as exc:
        fail(
            f"cannot read the data in {folder!r} ({exc}); install them with "
            "python scripts/download_binarized_mnist.py"
        )


def save_best(path: Path, write) -> None:
    """``write(temporary path)``, then put the file at ``path`` in one step: a
    symlink there is replaced, not followed; anything else that is not a
    regular file is refused."""
    if path.exists() and not path.is_symlink() and not path.is_file():
        fail(f"refusing to replace {str(path)!r}: it is not a regular file")
    temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        fail(f"cannot write {str(path)!r}: {exc}")


def learning_rate(step: int) -> float:
    """The rate of the ``step``-th minibatch (from 0)."""
    return max(LR / DECAY**step, MIN_LR)


def momentum(epoch: int) -> float:
    """The momentum of the ``epoch``-th epoch (from 1)."""
    return INIT_MOMENTUM if epoch < MOMENTUM_EPOCH else FINAL_MOMENTUM


def report(**fields) -> None:
    """The one line bench_job.py reads (the last line of standard output)."""
    print("RESULT " + json.dumps(fields), flush=True)


def epoch_line(epoch: int, seconds: float, objectives: dict) -> None:
    values = ", ".join(f"{name} {value:.2f}" for name, value in objectives.items())
    print(f"epoch {epoch}: {seconds:.2f} s training; {values}", file=sys.stderr, flush=True)


def parse_args(doc: str) -> argparse.Namespace:
    """``--epochs`` (default 150), ``--out`` (the best model's folder), ``--seed``."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--out", default=".", help="folder for the best model")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.epochs < 1:
        fail(f"--epochs must be at least 1, got {args.epochs}")
    if not os.path.isdir(args.out):
        fail(f"--out {args.out!r} is not a folder")
    return args
