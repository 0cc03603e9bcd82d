"""TrainingJob: one object runs a training job (the training program and a sweep trial use it).

In-process, on a tiny model and 200 random binary vectors: the YAML is read
and parsed once, a run refuses to start where it would lose or repeat
work, resumes are exact (also from checkpoints written before SGD owned its
base learning rate and momentum), and ``force`` scales the learning-rate
schedule and moves the momentum schedule as the numbers below say.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from pylearn_vae import job as job_module
from pylearn_vae import persistence, speedups
from pylearn_vae.config import yaml_parse
from pylearn_vae.job import (
    ConfigChanged,
    ConfigFileError,
    JobRefused,
    OutputInUse,
    RunFinished,
    TrainingJob,
    UnfinishedRun,
    train_environ,
)
from pylearn_vae.termination_criteria import EpochCounter
from tests.helpers.tiny_run import tiny_yaml

LR, DECAY, MOMENTUM, FINAL_MOMENTUM = 0.05, 1.01, 0.5, 0.9
BATCHES = 4  # 200 examples, batch_size 50

CONFIG = tiny_yaml(
    3,
    "[ !obj:pylearn_vae.training_algorithms.learning_rule.MomentumAdjustor {\n"
    "        final_momentum: 0.9, start: 1, saturate: 4 } ]",
    algorithm_extra="""
        update_callbacks: [ !obj:pylearn_vae.training_algorithms.sgd.ExponentialDecay {
            decay_factor: 1.01, min_lr: 1.0e-4 } ],""",
)

TIMES = {"seconds_per_epoch", "training_seconds_this_epoch", "total_seconds_last_epoch"}


def write_config(folder: Path, text: str = CONFIG) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def channels(model) -> dict:
    return {n: c.val_record for n, c in model.monitor.channels.items() if n not in TIMES}


def f32(value) -> float:
    return float(np.float32(value))


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """The reference: three epochs, left alone."""
    config = write_config(tmp_path_factory.mktemp("straight"))
    TrainingJob(config, quiet=True).run()
    return config.parent


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory) -> Path:
    """The same run stopped after its first epoch (its checkpoint says finished)."""
    config = write_config(tmp_path_factory.mktemp("one_epoch"))
    TrainingJob(config, quiet=True, epochs=1).run()
    return config.parent


def copy_unfinished(one_epoch: Path, target: Path) -> Path:
    shutil.copytree(one_epoch, target)
    edit_group(target / "run_checkpoint.h5", "state", lambda tree: tree.update(finished=False))
    return target / "run.yaml"


def edit_group(path: Path, group: str, change) -> None:
    """Change the JSON scalars that the checkpoint keeps in ``group``."""
    with h5py.File(path, "r+") as handle:
        tree = json.loads(handle[group].attrs["json"])
        change(tree)
        handle[group].attrs["json"] = json.dumps(tree)


def make_old_format(path: Path, base_lr: float, init_momentum: float) -> None:
    """Turn a checkpoint into what the code before SGD owned the bases wrote:
    the bases in the schedules' states, none in SGD's or the rule's."""
    edit_group(path, "state/algorithm", lambda tree: tree.pop("base_learning_rate"))
    edit_group(path, "state/algorithm/learning_rule", lambda tree: tree.pop("init_momentum"))
    edit_group(
        path, "state/algorithm/update_callbacks/0", lambda tree: tree.update(_base_lr=base_lr)
    )
    edit_group(
        path,
        "state/extensions/0",
        lambda tree: tree.update(_initialized=True, _init_momentum=init_momentum),
    )


def test_train_environ_matches_pylearn2():
    assert train_environ("runs/exp.yaml") == {
        "PYLEARN2_TRAIN_FILE_FULL_STEM": "runs/exp",
        "PYLEARN2_TRAIN_FILE_STEM": "exp",
        "PYLEARN2_TRAIN_FILE_NAME": "exp.yaml",
        "PYLEARN2_TRAIN_BASE_NAME": "exp.yaml",
        "PYLEARN2_TRAIN_DIR": "runs/",
    }


def test_a_run_reads_and_parses_its_yaml_once(tmp_path, monkeypatch):
    config = write_config(tmp_path)
    reads, parses = [], []
    read_text, parse = job_module.read_text_file, yaml_parse._parse
    monkeypatch.setattr(
        job_module, "read_text_file", lambda p, *a, **k: reads.append(p) or read_text(p, *a, **k)
    )
    monkeypatch.setattr(yaml_parse, "_parse", lambda *a, **k: parses.append(a[1]) or parse(*a, **k))
    job = TrainingJob(config, quiet=True, epochs=2, checkpoint_every=3)
    train = job.prepare()
    assert reads == [config] and parses == [str(config)]
    assert job.prepare() is train and len(parses) == 1
    assert train.config_text == CONFIG and train.quiet
    assert train.checkpoint_path == str(tmp_path / "run_checkpoint.h5")
    assert train.checkpoint_every == 3
    criterion = train.algorithm.termination_criterion
    assert isinstance(criterion, EpochCounter) and criterion.max_epochs == 2
    assert train.save_path == str(tmp_path / "run.pkl")  # ${PYLEARN2_TRAIN_FILE_FULL_STEM}
    job.close()  # (its output locks; run() releases them when it ends)
    assert TrainingJob(config, checkpoint_every=0).prepare().checkpoint_path is None


def test_a_second_job_writing_the_same_files_stops_at_once_naming_the_first(tmp_path):
    config = write_config(tmp_path / "a")
    first = TrainingJob(config)
    first.prepare()
    holder = rf"is being written by another run: process {os.getpid()} \(.*\), started 20"
    with pytest.raises(OutputInUse, match=rf"run_checkpoint\.h5 {holder}"):
        TrainingJob(config, restart=True).prepare()
    # Another YAML, whose model file is the first run's:
    shared = str(tmp_path / "a" / "run.pkl")
    other = write_config(
        tmp_path / "b", CONFIG.replace("'${PYLEARN2_TRAIN_FILE_FULL_STEM}.pkl'", f"'{shared}'")
    )
    with pytest.raises(OutputInUse, match=rf"run\.pkl {holder}"):
        TrainingJob(other).prepare()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        ".run.pkl.lock",
        ".run_checkpoint.h5.lock",
        "run.yaml",
    ]  # nothing written but the locks
    first.close()
    second = TrainingJob(other)
    second.prepare()  # (the refused job released the lock it had taken)
    second.close()
    TrainingJob(config).prepare()


@pytest.mark.compiles
def test_a_resume_parses_the_file_and_the_checkpoint_yaml_once_each(
    one_epoch, tmp_path, monkeypatch
):
    config = copy_unfinished(one_epoch, tmp_path / "run")
    config.write_text(CONFIG.replace("learning_rate: 0.05", "learning_rate: 0.1"))
    parses = []
    parse = yaml_parse._parse
    monkeypatch.setattr(yaml_parse, "_parse", lambda *a, **k: parses.append(a[1]) or parse(*a, **k))
    job = TrainingJob(config, resume=True, force=True)
    job.prepare()
    assert parses == [str(config), f"{job.checkpoint_path}:config_yaml"]
    assert job.changes == [("algorithm.learning_rate", 0.05, 0.1)]


def test_process_settings_and_the_second_process_belong_to_the_job(tmp_path, monkeypatch):
    config = write_config(tmp_path)
    calls = []

    @contextlib.contextmanager
    def second_process_compiles(allowed):
        calls.append(("enter", allowed))
        yield allowed
        calls.append(("exit", allowed))

    monkeypatch.setattr(speedups, "prepare_process", lambda: calls.append("prepare"))
    monkeypatch.setattr(speedups, "second_process_compiles", second_process_compiles)
    monkeypatch.setattr(job_module, "usable_cpus", lambda: 2)
    job = TrainingJob(config)
    train = job.prepare()
    assert calls == ["prepare"]
    train.main_loop = lambda: calls.append("main_loop")
    assert job.run() is train
    assert calls == ["prepare", ("enter", True), "main_loop", ("exit", True)]
    monkeypatch.setattr(job_module, "usable_cpus", lambda: 1)
    job = TrainingJob(config, restart=True)
    job.prepare().main_loop = lambda: None
    job.run()
    assert calls[-2:] == [("enter", False), ("exit", False)]


@pytest.mark.compiles
def test_refusals_name_the_file_and_change_nothing(one_epoch, tmp_path):
    missing = tmp_path / "nothing.yaml"
    with pytest.raises(JobRefused, match=f"configuration file {missing} does not exist"):
        TrainingJob(missing).prepare()
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: caf\xe9\n")
    with pytest.raises(ConfigFileError, match=r"latin\.yaml is not UTF-8 text \(byte 6\)"):
        TrainingJob(latin).prepare()
    other = tmp_path / "list.yaml"
    other.write_text("[1, 2]\n")
    with pytest.raises(ConfigFileError, match="describes a list, expected a pylearn_vae.train"):
        TrainingJob(other).prepare()
    with pytest.raises(JobRefused, match="no checkpoint to resume from: .*does not exist"):
        TrainingJob(write_config(tmp_path / "fresh"), resume=True).prepare()
    finished = shutil.copytree(one_epoch, tmp_path / "finished") / "run.yaml"
    with pytest.raises(RunFinished, match=r"already finished \(1 epochs\); nothing to do"):
        TrainingJob(finished, resume=True).prepare()
    TrainingJob(finished).prepare()  # a finished run may be run again
    config = copy_unfinished(one_epoch, tmp_path / "unfinished")
    before = (config.parent / "run_checkpoint.h5").read_bytes()
    with pytest.raises(UnfinishedRun, match=r"holds an unfinished run \(1 epochs done\)"):
        TrainingJob(config).prepare()
    TrainingJob(config, restart=True).prepare()
    config.write_text(CONFIG.replace("init_momentum: 0.5", "init_momentum: 0.6"))
    with pytest.raises(ConfigChanged) as refused:
        TrainingJob(config, resume=True).prepare()
    assert refused.value.differences == ["algorithm.learning_rule.init_momentum: 0.5 -> 0.6"]
    assert (config.parent / "run_checkpoint.h5").read_bytes() == before
    for bad, message in [
        ({"epochs": -1}, "epochs must be >= 0"),
        ({"checkpoint_every": -2}, "checkpoint_every must be >= 0"),
        ({"force": True}, "force=True needs resume=True"),
        ({"resume": True, "restart": True}, "contradict"),
    ]:
        with pytest.raises(ValueError, match=message):
            TrainingJob(config, **bad)


@pytest.mark.compiles
@pytest.mark.subprocess
def test_resume_without_changes_is_bit_exact(straight, one_epoch, tmp_path):
    config = copy_unfinished(one_epoch, tmp_path / "run")
    seen = []
    job = TrainingJob(config, quiet=True, resume=True, epochs=3)
    job.run(on_resumed=seen.append)
    assert [(r.epochs_seen, r.position, r.applied, r.unapplied) for r in seen] == [(1, 0, [], [])]
    resumed, reference = (
        persistence.load(tmp_path / "run" / "run.pkl"),
        persistence.load(straight / "run.pkl"),
    )
    for a, b in zip(resumed.get_param_values(), reference.get_param_values(), strict=True):
        assert np.array_equal(a, b)
    assert channels(resumed) == channels(reference)
    names = [p.name for p in job.run_files()]
    assert names == ["run.pkl", "run_checkpoint.h5"]


@pytest.mark.compiles
@pytest.mark.subprocess
def test_an_old_format_checkpoint_resumes_bit_exact(straight, one_epoch, tmp_path):
    """The code before SGD owned its bases kept them in the schedules' states
    (float32's 0.05 and 0.5: the values the first step used)."""
    config = copy_unfinished(one_epoch, tmp_path / "run")
    make_old_format(config.parent / "run_checkpoint.h5", f32(LR), f32(MOMENTUM))
    TrainingJob(config, quiet=True, resume=True, epochs=3).run()
    resumed = persistence.load(config.parent / "run.pkl")
    reference = persistence.load(straight / "run.pkl")
    for a, b in zip(resumed.get_param_values(), reference.get_param_values(), strict=True):
        assert np.array_equal(a, b)
    assert channels(resumed) == channels(reference)


def momentum_at(count: int, init: float) -> float:
    """MomentumAdjustor(final 0.9, start 1, saturate 4) after ``count`` calls, from ``init``."""
    alpha = min(max((count - 1) / 3, 0.0), 1.0)
    return f32(init * (1.0 - alpha) + alpha * FINAL_MOMENTUM)


@pytest.mark.compiles
def test_an_old_format_checkpoint_resumes_from_the_bases_its_schedules_kept(one_epoch, tmp_path):
    """After a forced resume the old code's schedules kept bases that the YAML
    does not say: they, not the YAML's values or the current ones, go on."""
    config = copy_unfinished(one_epoch, tmp_path / "run")
    make_old_format(config.parent / "run_checkpoint.h5", 2 * f32(LR), 0.6)
    TrainingJob(config, quiet=True, resume=True, epochs=3).run()
    records = channels(persistence.load(config.parent / "run.pkl"))
    lr, momentum = records["learning_rate"], records["momentum"]
    assert lr[1] == f32(f32(LR) / DECAY**BATCHES)  # the first run's epoch
    assert lr[2:] == [f32(2 * f32(LR) / DECAY ** (k * BATCHES)) for k in (2, 3)]
    assert momentum[1:] == [momentum_at(1, MOMENTUM), momentum_at(2, MOMENTUM), momentum_at(3, 0.6)]


@pytest.mark.compiles
def test_force_scales_the_learning_rate_schedule_and_moves_the_momentum_one(one_epoch, tmp_path):
    config = copy_unfinished(one_epoch, tmp_path / "run")
    config.write_text(
        CONFIG.replace("learning_rate: 0.05", "learning_rate: 0.02").replace(
            "init_momentum: 0.5", "init_momentum: 0.6"
        )
    )
    seen = []
    TrainingJob(config, quiet=True, resume=True, force=True, epochs=3).run(on_resumed=seen.append)
    rate = f32(f32(LR) / DECAY**BATCHES)  # where the first run's schedule had got to
    assert [r.applied for r in seen] == [
        [
            f"algorithm.learning_rate: 0.05 -> 0.02 (learning rate now {rate * 0.4:.6g}, "
            f"was {rate:.6g})",
            "algorithm.learning_rule.init_momentum: 0.5 -> 0.6 (momentum now 0.6, "
            f"was {momentum_at(2, MOMENTUM):.6g})",
        ]
    ]
    assert seen[0].unapplied == []
    records = channels(persistence.load(config.parent / "run.pkl"))
    # The schedule goes on from its count with the base scaled by 0.02 / 0.05.
    assert records["learning_rate"][2:] == [
        f32(f32(LR) * (0.02 / 0.05) / DECAY ** (k * BATCHES)) for k in (2, 3)
    ]
    # Momentum starts again from the new value and ramps from it.
    assert records["momentum"][2:] == [f32(0.6), momentum_at(3, 0.6)]


@pytest.mark.parametrize(
    ("save_path", "message"),
    [
        (
            "_checkpoint.h5",
            r"saves a model to \S+run_checkpoint\.h5, the run's own checkpoint file",
        ),
        ("_folder", r"cannot save \S+run_folder: it is a directory"),
    ],
)
def test_a_model_path_that_cannot_be_written_is_refused_before_training(
    tmp_path, save_path, message
):
    config = write_config(
        tmp_path,
        CONFIG.replace(
            "${PYLEARN2_TRAIN_FILE_FULL_STEM}.pkl", "${PYLEARN2_TRAIN_FILE_FULL_STEM}" + save_path
        ),
    )
    (tmp_path / "run_folder").mkdir()
    job = TrainingJob(config)
    with pytest.raises(JobRefused, match=message):
        job.prepare()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "run.yaml",
        "run_folder",
    ]


@pytest.mark.compiles
def test_measuring_the_threads_leaves_no_trace_in_the_run(tmp_path, monkeypatch):
    """A run that measures its thread count before every epoch (the real
    trial steps, undone each time) ends bit for bit where a run with the
    count fixed ends, and its checkpoint keeps the count for a resume."""
    from pylearn_vae.speedups.threads import ThreadChooser

    monkeypatch.setenv("PYLEARN_VAE_THREADS", "1")
    fixed = write_config(tmp_path / "fixed")
    TrainingJob(fixed, quiet=True).run()
    measured = write_config(tmp_path / "measured")
    choosers = []

    def chooser():  # two candidates (both one thread): every epoch measures
        choosers.append(ThreadChooser([1, 1], calls=2, rounds=1))
        choosers[-1]._epochs_since = -(10**6)  # (only drift or a new run measures)
        choosers[-1].observe = lambda seconds: setattr(choosers[-1], "_stale", True)
        return choosers[-1]

    monkeypatch.setattr(speedups, "thread_chooser", chooser)
    TrainingJob(measured, quiet=True).run()
    assert len(choosers) == 1 and choosers[0].count == 1 and len(choosers[0].seconds) == 1
    a, b = persistence.load(fixed.parent / "run.pkl"), persistence.load(measured.parent / "run.pkl")
    for x, y in zip(a.get_param_values(), b.get_param_values(), strict=True):
        assert np.array_equal(x, y)
    assert channels(a) == channels(b)
    with h5py.File(measured.parent / "run_checkpoint.h5", "r") as handle:
        saved = json.loads(handle["state/algorithm/threads"].attrs["json"])
    assert saved["count"] == 1


def test_two_extensions_saving_to_one_file_are_refused_before_training(tmp_path):
    config = write_config(
        tmp_path,
        tiny_yaml(
            2,
            "[ !obj:pylearn_vae.train_extensions.best_params.MonitorBasedSaveBest {\n"
            "      channel_name: 'train_objective', save_path: '${PYLEARN2_TRAIN_DIR}m.pkl' },\n"
            "  !obj:pylearn_vae.training_algorithms.sgd.PolyakAveraging {\n"
            "      start: 0, save_path: '${PYLEARN2_TRAIN_DIR}./m.pkl' } ]",
        ),
    )
    with pytest.raises(JobRefused, match=r"saves two models to \S+m\.pkl \(two save_path values"):
        TrainingJob(config).prepare()
    # (nothing but the run's own lock, beside its YAML: none beside a refused model)
    assert sorted(p.name for p in tmp_path.iterdir()) in (
        ["run.yaml"],
        [".run_checkpoint.h5.lock", "run.yaml"],
    )


@pytest.mark.parametrize(
    ("extension", "message"),
    [
        (
            "!obj:pylearn_vae.train_extensions.best_params.MonitorBasedSaveBest { "
            "channel_name: 'train_objective', save_path: 'best.txt' }",
            r"MonitorBasedSaveBest: save_path 'best\.txt' has the extension \.txt; a model file",
        ),
        (
            "!obj:pylearn_vae.training_algorithms.sgd.PolyakAveraging { start: 3, save_path: '' }",
            r"PolyakAveraging: save_path is empty",
        ),
        (
            "!obj:pylearn_vae.training_algorithms.sgd.PolyakAveraging { start: 3, save_path: 5 }",
            r"PolyakAveraging: save_path must be a file name, got int",
        ),
        (
            "!obj:pylearn_vae.train_extensions.snapshots.EpochSnapshots { "
            "save_path: 'e{epoch}.npy', every: 1 }",
            r"EpochSnapshots: save_path 'e\{epoch\}\.npy' has the extension \.npy",
        ),
    ],
)
def test_a_model_path_the_writer_would_refuse_is_refused_when_the_yaml_is_read(
    tmp_path, extension, message
):
    from pylearn_vae.config.yaml_parse import ConfigError

    config = write_config(tmp_path, tiny_yaml(2, f"[ {extension} ]"))
    with pytest.raises(
        (ConfigError, ConfigFileError, JobRefused, persistence.ModelFileError), match=message
    ):
        TrainingJob(config).prepare()
    # (nothing but the run's own lock, beside its YAML: none beside a refused model)
    assert sorted(p.name for p in tmp_path.iterdir()) in (
        ["run.yaml"],
        [".run_checkpoint.h5.lock", "run.yaml"],
    )
