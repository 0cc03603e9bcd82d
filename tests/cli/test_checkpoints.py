"""Checkpoints with real processes and real signals: exact resume, kills, NaNs, corrupt files."""

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from pylearn_vae import persistence
from pylearn_vae.config import yaml_parse
from pylearn_vae.persistence import ModelFileError
from tests.helpers.paths import REPO
from tests.helpers.runs import CONFIG, finish, start, write_config

pytestmark = pytest.mark.slow

BATCHES_PER_EPOCH = 20


def wait_until_held(folder: Path, proc, timeout=600):
    """Wait until the run holds at its ``pause_at`` minibatch."""
    paused = folder / "progress.txt.paused"
    deadline = time.monotonic() + timeout
    while not paused.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before holding: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            raise AssertionError("the run did not reach its pause_at minibatch in time")
        time.sleep(0.01)


def batches_done(folder: Path) -> list[int]:
    """The minibatch counts the runs in ``folder`` reported, in order."""
    lines = (folder / "progress.txt").read_text().split("\n")
    return [int(line.split()[1]) for line in lines if line.strip()]


def history(model):
    skip = {"seconds_per_epoch", "training_seconds_this_epoch", "total_seconds_last_epoch"}
    return {n: c.val_record for n, c in model.monitor.channels.items() if n not in skip}


@pytest.fixture(scope="module")
def straight(tmp_path_factory, mnist_root):
    """The reference: the same run, left alone."""
    folder = tmp_path_factory.mktemp("straight")
    config = write_config(folder)
    code, err = finish(start(config, mnist_root))
    assert code == 0, err
    return persistence.load(folder / "run.pkl")


def assert_same_run(model, reference):
    for a, b in zip(model.get_param_values(), reference.get_param_values()):
        assert np.array_equal(a, b)
    assert history(model) == history(reference)
    assert model.monitor.get_epochs_seen() == 3


@pytest.mark.subprocess
def test_sigkill_mid_epoch_then_resume_is_bit_exact(tmp_path, mnist_root, straight):
    config = write_config(tmp_path, pause_at=BATCHES_PER_EPOCH + 8)
    proc = start(config, mnist_root)
    wait_until_held(tmp_path, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert batches_done(tmp_path)[-1] == BATCHES_PER_EPOCH + 8
    assert not (tmp_path / "run.pkl").exists()
    code, err = finish(start(config, mnist_root, "--resume"))
    assert code == 0, err
    assert "resumed from" in err and "at epoch 1" in err
    assert_same_run(persistence.load(tmp_path / "run.pkl"), straight)
    assert_same_run(
        persistence.load(tmp_path / "run_checkpoint.h5".replace("_checkpoint.h5", ".pkl")), straight
    )
    code, err = finish(start(config, mnist_root, "--resume"))
    assert code == 0 and "already finished" in err


@pytest.mark.jax
@pytest.mark.subprocess
def test_jax_run_killed_mid_epoch_resumes_and_finishes(tmp_path, mnist_root):
    """On JAX the step is compiled per batch size and the learning rule's
    velocities must exist before the checkpoint is restored. The resumed run
    is not bit-exact on this backend (docs/differences.md: JAX draws from
    copies of the random generators), but it finishes the same schedule from
    the checkpoint's parameters and velocities."""
    pytest.importorskip("jax", reason="the JAX backend needs the [jax] extra")
    config = write_config(tmp_path, pause_at=BATCHES_PER_EPOCH + 8)
    proc = start(config, mnist_root, mode="JAX")
    wait_until_held(tmp_path, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    from pylearn_vae.persistence import read_checkpoint_info

    assert read_checkpoint_info(tmp_path / "run_checkpoint.h5")["epochs_seen"] == 1
    code, err = finish(start(config, mnist_root, "--resume", mode="JAX"))
    assert code == 0, err
    assert "resumed from" in err and "at epoch 1" in err
    model = persistence.load(tmp_path / "run.pkl")
    assert model.monitor.get_epochs_seen() == 3
    assert all(np.isfinite(v).all() for v in model.get_param_values())
    objective = model.monitor.channels["valid_objective"].val_record
    assert len(objective) == 4 and objective[-1] < objective[0]
    # The resumed run went through every minibatch of epochs 2 and 3 once more.
    assert batches_done(tmp_path)[-1] == 3 * BATCHES_PER_EPOCH


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.subprocess
def test_signal_stops_at_a_minibatch_checkpoints_and_resumes_exactly(
    tmp_path, mnist_root, straight, sig, code
):
    config = write_config(tmp_path, pause_at=BATCHES_PER_EPOCH + 5)
    proc = start(config, mnist_root)
    wait_until_held(tmp_path, proc)
    proc.send_signal(sig)  # ends the hold: the run stops before the next minibatch
    returncode, err = finish(proc)
    assert returncode == code, err
    assert (
        "in epoch 2 before minibatch 6 of 20" in err
        and "--resume" in err
        and "checkpoint written to" in err
    )
    returncode, err = finish(start(config, mnist_root, "--resume"))
    assert returncode == 0, err
    assert re.search(r"resumed from .* at epoch 1, minibatch \d+", err)
    assert_same_run(persistence.load(tmp_path / "run.pkl"), straight)


@pytest.mark.subprocess
def test_resume_refuses_a_changed_config_unless_forced(tmp_path, mnist_root):
    config = write_config(tmp_path)
    proc = start(config, mnist_root, "--epochs", "1")
    assert finish(proc)[0] == 0
    # A finished 1-epoch run: make the checkpoint look unfinished by training with more epochs.
    config.write_text(config.read_text().replace("learning_rate: 0.01", "learning_rate: 0.02"))
    with h5py.File(tmp_path / "run_checkpoint.h5", "r+") as handle:
        tree = handle["state"].attrs["json"]
        handle["state"].attrs["json"] = tree.replace('"finished": true', '"finished": false')
    code, err = finish(start(config, mnist_root, "--resume", "--epochs", "2"))
    assert code == 2 and "--force" in err
    # each difference on a line of its own (escaped, not a printed "\\n")
    assert "was made with:\n  algorithm.learning_rate: 0.01 -> 0.02\n" in err, err
    assert "\\n" not in err, err
    code, err = finish(start(config, mnist_root, "--resume", "--force", "--epochs", "2"))
    assert code == 0, err
    assert persistence.load(tmp_path / "run.pkl").monitor.get_epochs_seen() == 2


@pytest.mark.subprocess
def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path, mnist_root):
    config = write_config(tmp_path, lr="1e30")
    code, err = finish(start(config, mnist_root))
    assert code == 3, err
    assert re.search(
        r"training stopped: the training objective became (nan|inf) in epoch 1, minibatch \d+ of 20",
        err,
    ), err
    assert "lower learning_rate" in err and "--resume --force" in err
    checkpoint = tmp_path / "run_checkpoint.h5"
    model = persistence.load(
        tmp_path / "run_best.pkl"
    )  # saved after the initial monitoring, still finite
    assert all(np.isfinite(v).all() for v in model.get_param_values())
    from pylearn_vae.persistence import read_checkpoint_info

    assert read_checkpoint_info(checkpoint)["epochs_seen"] == 0


SAVER = """
import sys, numpy as np
from pylearn_vae.config import yaml_parse
from pylearn_vae import persistence
model = yaml_parse.load(sys.argv[2])
params = model.get_params()
version = int(sys.argv[3])
while True:
    version += 1
    for p in params:
        p.set_value(np.full(p.get_value().shape, version, dtype="float32"))
    persistence.save(sys.argv[1], model)
    print(version, flush=True)
"""

BIG_MODEL = (
    CONFIG[CONFIG.index("!obj:pylearn_vae.models.vae.VAE") : CONFIG.index("    algorithm:")]
    .rstrip()
    .rstrip(",")
)
BIG_MODEL = BIG_MODEL.replace("dim: 32", "dim: 1500")


@pytest.mark.parametrize("suffix", [".pkl", ".h5"])
@pytest.mark.subprocess
def test_kill_during_save_leaves_old_or_new_file(tmp_path, suffix):
    """A writer saving again and again is killed at a random moment after its
    first complete save; the file is then one whole version, never a mix, and
    one the killed writer had started (the last it reported, or the next)."""
    path = tmp_path / f"model{suffix}"
    rng = random.Random(0)
    versions = set()
    for kill in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(path), BIG_MODEL, str(kill * 1000)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        first = int(proc.stdout.readline())  # a complete save of this writer exists
        assert first == kill * 1000 + 1
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reported = [int(line) for line in proc.stdout.read().split()] or [first]
        proc.stdout.close()
        model = persistence.load(path)
        values = {float(v.flat[0]) for v in model.get_param_values()}
        assert len(values) == 1, values  # one complete version, never a mix
        assert all(np.all(v == next(iter(values))) for v in model.get_param_values())
        version = values.pop()
        assert max(reported) <= version <= max(reported) + 1, (version, reported)
        versions.add(version)
        leftovers = [p for p in tmp_path.iterdir() if p.name != path.name]
        for p in leftovers:  # a killed writer may leave its temporary file, never a broken target
            assert p.name.startswith(f".{path.name}.") and p.name.endswith(".tmp")
            p.unlink()
    assert len(versions) == 12


def test_hdf5_model_files_and_their_errors(tmp_path, monkeypatch):
    import errno

    model = yaml_parse.load(BIG_MODEL.replace("dim: 1500", "dim: 16"))
    path = tmp_path / "m.h5"
    persistence.save(path, model)
    clone = persistence.load(path)
    for a, b in zip(model.get_param_values(), clone.get_param_values()):
        assert np.array_equal(a, b)
    truncated = tmp_path / "t.h5"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ModelFileError, match="not a readable HDF5 file.*truncated or corrupt"):
        persistence.load(truncated)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["x"] = np.zeros(3)
    with pytest.raises(ModelFileError, match="an HDF5 file but not a pylearn_vae model"):
        persistence.load(other)
    newer = tmp_path / "newer.h5"
    shutil.copy(path, newer)
    with h5py.File(newer, "r+") as handle:
        handle.attrs["format_version"] = 99
    with pytest.raises(ModelFileError, match="format version 99, newer than"):
        persistence.load(newer)
    missing = tmp_path / "missing.h5"
    shutil.copy(path, missing)
    with h5py.File(missing, "r+") as handle:
        del handle["params/posterior_mu_W"]
    with pytest.raises(ModelFileError, match="parameter 'posterior_mu_W' is missing"):
        persistence.load(missing)
    wrong = tmp_path / "wrong.h5"
    shutil.copy(path, wrong)
    with h5py.File(wrong, "r+") as handle:
        del handle["params/prior_mu"]
        handle["params/prior_mu"] = np.zeros(3, "float32")
    with pytest.raises(
        ModelFileError,
        match=r"parameter 'prior_mu' has shape \(3,\) in the file, the model needs \(8,\)",
    ):
        persistence.load(wrong)
    evil = tmp_path / "evil.h5"
    shutil.copy(path, evil)
    with h5py.File(evil, "r+") as handle:
        handle.attrs["model_yaml"] = "!obj:os.system {command: 'touch /tmp/pylearn_vae_h5_pwned'}"
    with pytest.raises(ModelFileError, match="os.system may not be used here"):
        persistence.load(evil)
    assert not Path("/tmp/pylearn_vae_h5_pwned").exists()
    before = path.read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(ModelFileError, match="the disk is full"):
        persistence.save(path, model)
    monkeypatch.undo()
    assert path.read_bytes() == before


@pytest.mark.subprocess
def test_a_run_with_averaging_killed_mid_epoch_resumes_bit_exactly(tmp_path, mnist_root, straight):
    """PolyakAveraging's running means live in the checkpoint: a run killed
    during its second epoch of averaging and resumed saves the same averaged
    model and monitor history as the run left alone."""

    def averaged(folder, pause_at=0):
        config = write_config(folder, pause_at=pause_at)
        text = config.read_text().replace(
            "saturate: 3 },",
            "saturate: 3 },\n        !obj:pylearn_vae.training_algorithms.sgd.PolyakAveraging { start: 1 },",
        )
        config.write_text(text)
        return config

    alone = averaged(tmp_path / "alone")
    code, err = finish(start(alone, mnist_root))
    assert code == 0, err
    killed = averaged(tmp_path / "killed", pause_at=2 * BATCHES_PER_EPOCH + 5)
    proc = start(killed, mnist_root)
    wait_until_held(killed.parent, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with h5py.File(killed.parent / "run_checkpoint.h5", "r") as f:
        assert any("means" in name for name in _names(f))  # the averaging had started
    code, err = finish(start(killed, mnist_root, "--resume"))
    assert code == 0, err
    reference = persistence.load(alone.parent / "run.pkl")
    resumed = persistence.load(killed.parent / "run.pkl")
    assert_same_run(resumed, reference)
    best = [persistence.load(f / "run_best.pkl") for f in (alone.parent, killed.parent)]
    for a, b in zip(*(m.get_param_values() for m in best)):
        assert np.array_equal(a, b)
    # what was saved is the average, not the last step's parameters
    last = straight.get_param_values()
    assert not any(np.array_equal(a, b) for a, b in zip(resumed.get_param_values(), last))


def _names(group) -> list[str]:
    names = []
    group.visit(names.append)
    return names
