"""Shared test configuration: strict PyTensor flags, skips for absent extras,
and the real binarized MNIST data. Helpers shared by test modules live in
:mod:`tests.helpers`."""

from __future__ import annotations

import os
from pathlib import Path

import pytensor
import pytest

from pylearn_vae import numerics, speedups
from pylearn_vae.cli import download_binarized_mnist
from pylearn_vae.utils.processes import usable_cpus
from tests.helpers.paths import MIRROR

#: Markers that say what each test needs, checked (tests/needs.py).
pytest_plugins = ["tests.needs"]

#: Imports Ray at the top, so --doctest-modules must not import it where the
#: [sweep] extra is absent (only the sweep tests import it, after their skip).
collect_ignore = ["helpers/ray_callbacks.py"]

# The training jobs the suite runs (and the programs it starts) keep the
# BLAS thread count the libraries start with instead of measuring one: a
# result must not depend on how busy the machine is. The tests of the
# measurement set their own (tests/utils/test_blas_threads.py).
os.environ.setdefault(speedups.threads.ENV_VARIABLE, str(usable_cpus()))

#: Marker -> (module it needs, the reason a test so marked is skipped without it).
EXTRAS = {
    "jax": ("jax", "the JAX backend needs the [jax] extra"),
    "ray": ("ray.tune", "sweeps need Ray Tune, the [sweep] extra"),
    "viz": ("matplotlib", "plotting needs matplotlib, the [viz] extra"),
    "tensorboard": (
        "tensorboardX",
        "TensorBoard logging needs tensorboardX, the [tensorboard] extra",
    ),
    "mlflow": ("mlflow", "MLflow logging needs the [mlflow] extra"),
    "notebook": ("nbclient", "executing the notebook needs the [notebook] extra"),
}


def pytest_runtest_setup(item):
    """Tests marked ``jax`` (or run with a JAX fixture parameter so marked),
    ``ray``, ``viz``, ``tensorboard``, ``mlflow`` or ``notebook`` are skipped when that optional extra is not installed;
    tests marked ``speedups`` (of the speed machinery itself) when the switch
    turned it off."""
    for marker, (module, reason) in EXTRAS.items():
        if item.get_closest_marker(marker) is not None:
            pytest.importorskip(module, reason=reason)
    if item.get_closest_marker("speedups") is not None and not speedups.enabled():
        pytest.skip(f"a test of the speed-ups, which {speedups.ENV_VARIABLE}=0 turned off")


@pytest.fixture(autouse=True)
def mlflow_in_its_own_folder(request, tmp_path_factory, monkeypatch):
    """A test marked ``mlflow`` runs in a folder of its own: MLflow puts a local
    store's artifacts in ``./mlruns`` of the working folder, which must not be
    the checkout."""
    if request.node.get_closest_marker("mlflow") is not None:
        monkeypatch.chdir(tmp_path_factory.mktemp("mlflow_cwd"))


@pytest.fixture(scope="session", autouse=True)
def declared_numerics():
    """The tests compute under the numerics setting the library applies when
    it trains and evaluates (flush-to-zero unless PYLEARN_VAE_FLUSH_DENORMALS=0)."""
    with numerics.applied():
        yield


@pytest.fixture
def gradual_underflow():
    """IEEE subnormals for one test (kernel accuracy near the underflow
    threshold, the flush-to-zero setting itself), whatever the setting."""
    with numerics.flushed_denormals(False):
        yield


@pytest.fixture(scope="session", autouse=True)
def strict_pytensor():
    """An optimisation or shape-inference failure is a test failure, and any
    float64 variable created while building a graph raises (the package's
    graphs are float32 end to end); tests that need float64 say so."""
    with pytensor.config.change_flags(
        on_opt_error="raise", on_shape_error="raise", warn_float64="raise"
    ):
        yield


@pytest.fixture(scope="module")
def deliberate_float64():
    """For modules whose graphs hold float64 on purpose (the mixture priors'
    pairwise log-density, whose docstring says why)."""
    with pytensor.config.change_flags(warn_float64="ignore"):
        yield


@pytest.fixture
def float64_graphs():
    """Allow float64 variables (for finite-difference checks)."""
    with pytensor.config.change_flags(warn_float64="ignore"):
        yield


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The real binarized MNIST mirror (``../shared`` beside the clone)."""
    if not (MIRROR / "binarized_mnist_train.amat").exists():
        pytest.fail(
            f"the binarized MNIST mirror is expected at {MIRROR} (../shared beside the clone)"
        )
    return MIRROR


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory, mirror) -> Path:
    """A data root with the three real splits installed from the mirror."""
    root = tmp_path_factory.mktemp("data")
    code = download_binarized_mnist.main(
        ["--source", str(mirror), "--data-path", str(root), "--quiet"]
    )
    assert code == 0
    return root
