"""Paths the tests share: the repository and the real data mirror."""

from pathlib import Path

#: The root of the source tree (holds ``scripts/``, ``yaml/``, ``pylearn_vae/``).
REPO = Path(__file__).resolve().parents[2]

#: The binarized MNIST mirror, in ``../shared`` beside the clone.
MIRROR = REPO.parent / "shared" / "data" / "binarized_mnist"
