"""Fixtures for sweep tests: the real data mirror (from tests/cli) and a tiny base YAML."""

from pathlib import Path

from tests.cli.conftest import SMALL_MNIST_YAML, mirror, mnist_root  # noqa: F401 (shared fixtures)

REPO = Path(__file__).resolve().parents[2]

#: tests/cli's small MNIST VAE, made smaller (784-16-8; 1,000 training and 300
#: validation digits, an epoch is 10 minibatches), saving next to its YAML.
BASE_YAML = "# the base training YAML of the sweep tests\n" + (
    SMALL_MNIST_YAML.replace("stop: 3000", "stop: 1000")
    .replace("stop: 500", "stop: 300")
    .replace("dim: 64", "dim: 16")
    .replace("'PATH'", "'${PYLEARN2_TRAIN_FILE_FULL_STEM}.pkl'")
)
assert BASE_YAML.count("dim: 16") == 2 and "stop: 300" in BASE_YAML and "PATH" not in BASE_YAML


def write_sweep(folder: Path, body: str) -> Path:
    """A base YAML and a sweep file (``base: base.yaml`` plus ``body``) in ``folder``."""
    (folder / "base.yaml").write_text(BASE_YAML)
    path = folder / "sweep.yaml"
    path.write_text("base: base.yaml\n" + body)
    return path
