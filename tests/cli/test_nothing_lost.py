"""Nothing is lost: fresh runs next to unfinished ones, non-finite parameters, forced resumes,
and damaged checkpoint fields (real processes for the command-line cases)."""

from __future__ import annotations

import functools
import json
import re
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from pylearn_vae import persistence
from pylearn_vae.config import yaml_parse
from pylearn_vae.job import train_environ
from pylearn_vae.persistence import ModelFileError, load_checkpoint, read_checkpoint_info
from tests.helpers.runs import finish, start, write_config

pytestmark = pytest.mark.slow

FILES = ("run_checkpoint.h5", "run_best.pkl", "run.pkl")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, mnist_root) -> Path:
    """A finished one-epoch run: its YAML, checkpoint, best model and final model."""
    folder = tmp_path_factory.mktemp("finished")
    config = write_config(folder)  # default settings, as in test_checkpoints
    code, err = finish(start(config, mnist_root, "--epochs", "1"))
    assert code == 0, err
    return folder


def copy_run(finished_run: Path, target: Path, unfinished: bool = True) -> Path:
    shutil.copytree(finished_run, target)
    if unfinished:
        edit_state(target / "run_checkpoint.h5", lambda tree: tree.update(finished=False))
    return target / "run.yaml"


def edit_state(path: Path, change, group: str = "state") -> None:
    with h5py.File(path, "r+") as handle:
        tree = json.loads(handle[group].attrs["json"])
        change(tree)
        handle[group].attrs["json"] = json.dumps(tree)


def snapshot(folder: Path) -> dict:
    return {name: (folder / name).read_bytes() for name in FILES}


@pytest.mark.subprocess
def test_fresh_run_next_to_an_unfinished_run_is_refused(finished_run, tmp_path, mnist_root):
    config = copy_run(finished_run, tmp_path / "run")
    before = snapshot(config.parent)
    code, err = finish(start(config, mnist_root))
    assert code == 2, err
    assert f"{config.parent / 'run_checkpoint.h5'} holds an unfinished run (1 epochs done)" in err
    assert f"python scripts/train.py {config} --resume\n" in err
    assert f"python scripts/train.py {config} --restart" in err
    assert snapshot(config.parent) == before
    code, err = finish(start(config, mnist_root, "--resume", "--restart"))
    assert code == 2 and "--restart and --resume contradict each other" in err


@pytest.mark.subprocess
def test_one_run_at_a_time_per_yaml_and_a_killed_runs_lock_needs_no_flag(tmp_path, mnist_root):
    """A second run of the same YAML (fresh over it, or resuming it) stops at
    once naming the running one; once that one is killed, a run starts."""
    config = write_config(tmp_path / "run", pause_at=5)
    first = start(config, mnist_root)
    try:
        paused = config.parent / "progress.txt.paused"
        deadline = time.monotonic() + 300
        while not paused.exists():
            assert first.poll() is None, first.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for flag in ("--restart", "--resume"):
            code, err = finish(start(config, mnist_root, flag))
            assert code == 2, err
            assert (
                f"error: {config.parent / 'run_checkpoint.h5'} is being written by another run: "
                f"process {first.pid} (" in err
            ), err
            assert "Traceback" not in err
        assert first.poll() is None  # the first run was not disturbed
    finally:
        first.kill()
        first.wait()
    code, err = finish(start(config, mnist_root, "--restart", "--epochs", "1"))
    assert code == 0, err


@pytest.mark.subprocess
def test_a_finished_run_may_be_run_again_and_restart_replaces(finished_run, tmp_path, mnist_root):
    """A fresh run with -inf initial biases stops before saving anything: the
    "unchanged" message is true, byte for byte."""
    config = copy_run(finished_run, tmp_path / "run")
    config.write_text(
        config.read_text().replace(
            "dim: 32, irange: 0.05", "dim: 32, irange: 0.05, init_bias: -.inf", 1
        )
    )
    before = snapshot(config.parent)
    code, err = finish(start(config, mnist_root, "--restart"))
    assert code == 3, err
    assert re.search(r"parameter '\w+' is inf before any training; check its initial value", err), (
        err
    )
    assert "the best model are unchanged" in err
    assert snapshot(config.parent) == before


@pytest.mark.subprocess
def test_resume_from_a_checkpoint_with_an_infinite_bias_is_refused(
    finished_run, tmp_path, mnist_root
):
    config = copy_run(finished_run, tmp_path / "run")
    checkpoint = config.parent / "run_checkpoint.h5"
    with h5py.File(checkpoint, "r+") as handle:
        name = next(n for n in handle["params"] if n.endswith("_b"))
        handle["params"][name][0] = -np.inf
    before = snapshot(config.parent)
    code, err = finish(start(config, mnist_root, "--resume", "--epochs", "2"))
    assert code == 1, err
    assert f"{checkpoint}: parameter '{name}' has infinite values" in err
    assert snapshot(config.parent) == before


@pytest.mark.subprocess
def test_forced_resume_applies_the_new_learning_rate_and_says_so(
    finished_run, tmp_path, mnist_root
):
    config = copy_run(finished_run, tmp_path / "run")
    config.write_text(config.read_text().replace("learning_rate: 0.01", "learning_rate: 1e-05"))
    code, err = finish(start(config, mnist_root, "--resume", "--force", "--epochs", "2"))
    assert code == 0, err
    assert re.search(
        rf"applied from {re.escape(str(config))}: algorithm\.learning_rate: 0\.01 -> 1e-05 "
        r"\(learning rate now 9\.\d+e-06, was 0\.0098\d*\)",
        err,
    ), err
    rates = persistence.load(config.parent / "run.pkl").monitor.channels["learning_rate"].val_record
    assert rates[1] == pytest.approx(0.01 / 1.001**20, rel=1e-4)  # the first run's epoch
    assert rates[2] == pytest.approx(1e-5, rel=1e-4)  # ExponentialDecay's min_lr, from the new rate


# --- damaged checkpoint fields, checked in-process against a set-up run -----------------


@pytest.fixture(scope="module")
def set_up_train(finished_run, mnist_root):
    config = str(finished_run / "run.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYLEARN2_DATA_PATH", str(mnist_root))
        train = yaml_parse.load_path(config, environ=train_environ(config))
        train.setup()
    return train


def _state(key_path, value):
    def change(tree):
        node = tree
        *parents, last = key_path
        for key in parents:
            node = node[key]
        node[last] = value

    return change


DAMAGED = [
    (
        "resume_position 10**9",
        "state/algorithm",
        [],
        _state(["resume_position"], 10**9),
        r"state/algorithm/resume_position is 1000000000, but an epoch of this run has 20 minibatches",
    ),
    (
        "resume_position -5",
        "state/algorithm",
        [],
        _state(["resume_position"], -5),
        r"state/algorithm/resume_position is -5, expected an integer >= 0",
    ),
    (
        "resume_position text",
        "state/algorithm",
        [],
        _state(["resume_position"], "3"),
        r"resume_position is '3', expected an integer",
    ),
    (
        "thread count 10**6",
        "state/algorithm/threads",
        [],
        _state(["count"], 10**6),
        r"state/algorithm/threads/count is 1000000, expected an integer from 0 to 4096",
    ),
    (
        "thread epochs text",
        "state/algorithm/threads",
        [],
        _state(["epochs_since"], "3"),
        r"state/algorithm/threads/epochs_since is '3', expected an integer",
    ),
    (
        "finished text",
        "state",
        [],
        _state(["finished"], "yes"),
        r"state/finished is 'yes', expected true or false",
    ),
    (
        "epoch offset 10**9",
        "state/termination",
        [],
        _state(["_offset"], 10**9),
        r"state/termination/_offset is 1000000000, expected none or an integer from 0 to the 1 epochs seen",
    ),
    ("epoch offset -1", "state/termination", [], _state(["_offset"], -1), r"_offset is -1"),
    (
        "termination nested 900 deep",
        "state/termination",
        [],
        _state(["x"], functools.reduce(lambda inner, _: {"a": inner}, range(900), 1)),
        r"field state/termination is nested more than 64 levels deep",
    ),
    ("extension index 7", "state/extensions", [], _state(["7"], {}), None),
    (
        "rng state garbage",
        "state/rngs",
        [],
        None,
        r"state/rngs/\S+ is not a valid random generator state",
    ),
    (
        "epochs_seen -1",
        "monitor",
        [],
        _state(["epochs_seen"], -1),
        r"monitor epochs_seen is -1|monitor counter 'epochs_seen' is -1",
    ),
    (
        "missing algorithm state",
        "state/algorithm",
        [],
        lambda tree: tree.pop("resume_position"),
        r"field state/algorithm/resume_position is missing",
    ),
]


@pytest.mark.parametrize(
    ("group", "change", "match"), [pytest.param(g, c, m, id=i) for i, g, _, c, m in DAMAGED]
)
@pytest.mark.compiles
@pytest.mark.subprocess
def test_damaged_checkpoint_fields_are_located(
    finished_run, set_up_train, tmp_path, group, change, match
):
    path = tmp_path / "run_checkpoint.h5"
    shutil.copy(finished_run / "run_checkpoint.h5", path)
    if group == "state/extensions":
        with h5py.File(path, "r+") as handle:
            handle["state/extensions"].create_group("7").attrs["json"] = "{}"
        match = r"field state/extensions/7 has no matching entry: this run has 2 of them"
    elif group == "state/rngs":
        with h5py.File(path, "r+") as handle:
            tree = json.loads(handle["state/rngs"].attrs["json"])
            first = sorted(tree)[0]
            tree[first] = '{"bit_generator": "PCG64", "state": "nonsense"}'
            handle["state/rngs"].attrs["json"] = json.dumps(tree)
    else:
        edit_state(path, change, group)
    with pytest.raises(ModelFileError, match=match) as info:
        if group in ("state", "monitor", "state/algorithm") and "epoch of this run" not in match:
            read_checkpoint_info(path)
        load_checkpoint(path, set_up_train)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.arange(3), r"attribute 'config_yaml' is a ndarray, expected a string"),
        (
            "[" * 5000 + "]" * 5000,
            r"run_checkpoint\.h5:config_yaml, line 1, column 101: invalid YAML: this YAML is nested more",
        ),
    ],
)
@pytest.mark.subprocess
def test_stored_config_yaml_is_checked(finished_run, tmp_path, value, match):
    from pylearn_vae.config.compare import config_differences
    from pylearn_vae.config.yaml_parse import ConfigError

    path = tmp_path / "run_checkpoint.h5"
    shutil.copy(finished_run / "run_checkpoint.h5", path)
    with h5py.File(path, "r+") as handle:
        handle.attrs["config_yaml"] = value
    with pytest.raises((ModelFileError, ConfigError), match=match):
        info = read_checkpoint_info(path)
        config_differences(
            info["config_yaml"], (finished_run / "run.yaml").read_text(), f"{path}:config_yaml"
        )
