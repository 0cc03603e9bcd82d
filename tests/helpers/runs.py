"""The programs of ``scripts/`` run in child processes, and what their runs report.

:class:`Progress` is imported by the test YAML (``!obj:tests.helpers.runs.Progress``)
in the child, with ``PYTHONPATH`` set to the repository.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers.paths import REPO


class Progress:
    """An SGD update callback that records (epoch, minibatch) and can hold the run at one step.

    With ``pause_at`` set to a count of minibatches, the run stops after that
    minibatch's update: it creates ``<path>.paused`` and waits until
    ``<path>.go`` exists. A test sends its signal while the run is held, so
    where the run is when the signal arrives does not depend on how fast the
    machine is. A stop request (the training program's signal handler sets
    ``algorithm.stop_requested``) also ends the hold. The run is held only
    once per folder (a resumed run passes the same step again and goes on).
    """

    def __init__(self, path: str, delay: float = 0.0, pause_at: int = 0) -> None:
        self.path = path
        self.delay = float(delay)
        self.pause_at = int(pause_at)

    def __call__(self, algorithm) -> None:
        monitor = algorithm.monitor
        with open(self.path, "a") as handle:
            handle.write(f"{monitor.get_epochs_seen() + 1} {monitor.get_batches_seen()}\n")
        if self.delay:
            time.sleep(self.delay)
        if self.pause_at and monitor.get_batches_seen() == self.pause_at:
            self._hold(algorithm)

    def _hold(self, algorithm) -> None:
        paused, go = Path(self.path + ".paused"), Path(self.path + ".go")
        if paused.exists():
            return
        paused.write_text("")
        deadline = time.monotonic() + 600
        while not (go.exists() or algorithm.stop_requested) and time.monotonic() < deadline:
            time.sleep(0.005)


#: The checkpoint tests' run: a 784-32-8 VAE for 3 epochs of 20 minibatches,
#: reporting each step to :class:`Progress` (``LR`` and ``PAUSE`` are filled in).
CONFIG = """\
!obj:pylearn_vae.train.Train {
    dataset: &train !obj:pylearn_vae.datasets.binarized_mnist.BinarizedMNIST { which_set: 'train', stop: 2000 },
    model: !obj:pylearn_vae.models.vae.VAE {
        nvis: 784, nhid: 8, seed: 3,
        prior: !obj:pylearn_vae.models.vae.prior.DiagonalGaussianPrior {},
        conditional: !obj:pylearn_vae.models.vae.conditional.BernoulliVector {
            name: 'conditional',
            mlp: !obj:pylearn_vae.models.mlp.MLP { layers: [
                !obj:pylearn_vae.models.mlp.RectifiedLinear { layer_name: 'h', dim: 32, irange: 0.05 } ] } },
        posterior: !obj:pylearn_vae.models.vae.conditional.DiagonalGaussian {
            name: 'posterior',
            mlp: !obj:pylearn_vae.models.mlp.MLP { layers: [
                !obj:pylearn_vae.models.mlp.RectifiedLinear { layer_name: 'h', dim: 32, irange: 0.05 } ] } },
    },
    algorithm: !obj:pylearn_vae.training_algorithms.sgd.SGD {
        batch_size: 100, learning_rate: LR,
        learning_rule: !obj:pylearn_vae.training_algorithms.learning_rule.Momentum { init_momentum: 0.5 },
        monitoring_dataset: { 'train': *train,
            'valid': !obj:pylearn_vae.datasets.binarized_mnist.BinarizedMNIST { which_set: 'valid', stop: 500 } },
        cost: !obj:pylearn_vae.costs.vae.VAECriterion {},
        termination_criterion: !obj:pylearn_vae.termination_criteria.EpochCounter { max_epochs: 3 },
        update_callbacks: [
            !obj:pylearn_vae.training_algorithms.sgd.ExponentialDecay { decay_factor: 1.001, min_lr: 1e-5 },
            !obj:tests.helpers.runs.Progress { path: '${PYLEARN2_TRAIN_DIR}progress.txt', pause_at: PAUSE },
        ],
    },
    extensions: [
        !obj:pylearn_vae.train_extensions.best_params.MonitorBasedSaveBest {
            channel_name: 'valid_objective', save_path: '${PYLEARN2_TRAIN_FILE_FULL_STEM}_best.pkl' },
        !obj:pylearn_vae.training_algorithms.learning_rule.MomentumAdjustor { final_momentum: 0.9, start: 1, saturate: 3 },
    ],
    save_path: '${PYLEARN2_TRAIN_FILE_FULL_STEM}.pkl',
}
"""


def write_config(folder: Path, lr="0.01", pause_at=0) -> Path:
    """The test run's YAML in ``folder``; with ``pause_at``, the run holds after
    that many minibatches (counted from the start) until ``progress.txt.go`` exists."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run.yaml"
    path.write_text(CONFIG.replace("LR", lr).replace("PAUSE", str(pause_at)))
    return path


def env(mnist_root):
    """The environment of a child run: the data in ``mnist_root``, this checkout importable."""
    return {**os.environ, "PYLEARN2_DATA_PATH": str(mnist_root), "PYTHONPATH": str(REPO)}


def start(config, mnist_root, *extra, mode=None):
    """Start ``scripts/train.py config --quiet *extra`` (with PyTensor's ``mode`` if given)."""
    environment = env(mnist_root)
    if mode is not None:
        flags = environment.get("PYTENSOR_FLAGS", "")
        environment["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, f"mode={mode}") if f)
    return subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "train.py"), str(config), "--quiet", *extra],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_file(path: Path, proc, seconds: float = 300) -> None:
    """Wait until ``path`` exists, while the run ``proc`` is alive (its standard
    error is the failure message if it ends first)."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"the run never reached {path.name}"
        time.sleep(0.05)


def finish(proc, timeout=600):
    """Wait for a run :func:`start` began: (exit status, standard error)."""
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


# Sets the address-space limit inside the child, then runs the script as __main__ (a
# preexec_fn would make subprocess fork a process that may hold JAX's threads).
_LIMITED = (
    "import resource, runpy, sys; limit = int(sys.argv.pop(1)); "
    "resource.setrlimit(resource.RLIMIT_AS, (limit, limit)); sys.argv.pop(0); "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def run_script(
    script: str, *args, cwd=None, address_space: int | None = None
) -> subprocess.CompletedProcess:
    """Run ``scripts/<script>`` with ``args`` in a subprocess, capturing its text output.

    ``address_space`` limits the child's virtual memory to that many bytes.
    """
    command = [str(REPO / "scripts" / script), *map(str, args)]
    if address_space is not None:
        command = ["-c", _LIMITED, str(address_space), *command]
    return subprocess.run(
        [sys.executable, *command],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )
