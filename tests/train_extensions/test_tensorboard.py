"""The TensorBoard extension and ``--tensorboard``: the curves read back with
TensorBoard's own reader equal the monitor's records (as float32), a resumed
run continues them without a duplicated or a missing step, and without the
[tensorboard] extra nothing imports tensorboardX and asking for it fails in
one line naming the extra.

In-process, on a tiny model and 200 random binary vectors (no MNIST).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pylearn_vae.cli import train as train_cli
from pylearn_vae.errors import MissingExtraError, StopRequested
from pylearn_vae.job import TrainingJob
from pylearn_vae.train_extensions import tensorboard

EPOCHS = 3

CONFIG = """\
!obj:pylearn_vae.train.Train {
    dataset: &train !obj:pylearn_vae.testing.datasets.random_binary_design_matrix {
        rng: 3, num_examples: 200, dim: 16 },
    model: !obj:pylearn_vae.models.vae.VAE {
        nvis: 16, nhid: 3, seed: 2,
        prior: !obj:pylearn_vae.models.vae.prior.DiagonalGaussianPrior {},
        conditional: !obj:pylearn_vae.models.vae.conditional.BernoulliVector {
            name: 'conditional',
            mlp: !obj:pylearn_vae.models.mlp.MLP { layers: [
                !obj:pylearn_vae.models.mlp.Tanh { layer_name: 'h', dim: 8, irange: 0.1 } ] } },
        posterior: !obj:pylearn_vae.models.vae.conditional.DiagonalGaussian {
            name: 'posterior',
            mlp: !obj:pylearn_vae.models.mlp.MLP { layers: [
                !obj:pylearn_vae.models.mlp.Tanh { layer_name: 'h', dim: 8, irange: 0.1 } ] } },
    },
    algorithm: !obj:pylearn_vae.training_algorithms.sgd.SGD {
        batch_size: 50, learning_rate: 0.05,
        learning_rule: !obj:pylearn_vae.training_algorithms.learning_rule.Momentum {
            init_momentum: 0.5 },
        monitoring_dataset: { 'train': *train },
        cost: !obj:pylearn_vae.costs.vae.VAECriterion {},
        termination_criterion: !obj:pylearn_vae.termination_criteria.EpochCounter {
            max_epochs: %(epochs)d },
    },
    extensions: %(extensions)s,
    save_path: '${PYLEARN2_TRAIN_FILE_FULL_STEM}.pkl',
}
"""

#: The extension as a YAML user writes it.
YAML_EXTENSION = (
    "[ !obj:pylearn_vae.train_extensions.tensorboard.TensorBoard { "
    "log_dir: '${PYLEARN2_TRAIN_DIR}tb' } ]"
)


def write_config(folder: Path, extensions: str = "[]") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run.yaml"
    path.write_text(CONFIG % {"epochs": EPOCHS, "extensions": extensions}, encoding="utf-8")
    return path


def read_events(folder: Path):
    """TensorBoard's own reader over ``folder`` (every event kept, orphaned steps purged
    as TensorBoard purges them)."""
    accumulator_module = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="reading the events back needs TensorBoard's reader (pip install tensorboard)",
    )
    accumulator = accumulator_module.EventAccumulator(
        str(folder), size_guidance={accumulator_module.SCALARS: 0, accumulator_module.TENSORS: 0}
    )
    accumulator.Reload()
    return accumulator


def scalars(accumulator) -> dict[str, list[tuple[int, float]]]:
    return {
        tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }


def monitor_curves(model) -> dict[str, list[tuple[int, float]]]:
    """Every channel's record as (epochs seen, value as float32)."""
    return {
        name: [
            (int(epoch), float(np.float32(value)))
            for epoch, value in zip(channel.epoch_record, channel.val_record, strict=True)
        ]
        for name, channel in model.monitor.channels.items()
    }


def config_texts(accumulator) -> list[tuple[int, str]]:
    return [
        (event.step, event.tensor_proto.string_val[0].decode("utf-8"))
        for event in accumulator.Tensors(f"{tensorboard.CONFIG_TAG}/text_summary")
    ]


@pytest.mark.tensorboard
@pytest.mark.compiles
@pytest.mark.subprocess
def test_every_channel_is_a_curve_equal_to_the_monitor_record(tmp_path):
    config = write_config(tmp_path / "run", YAML_EXTENSION)
    train = TrainingJob(config, quiet=True).run()
    events = read_events(tmp_path / "run" / "tb")
    curves = monitor_curves(train.model)
    assert "train_objective" in curves and len(curves) > 5
    assert all(steps == list(range(EPOCHS + 1)) for steps in _steps(curves).values())
    assert scalars(events) == curves
    assert config_texts(events) == [(0, tensorboard.as_markdown_code(config.read_text()))]


def _steps(curves) -> dict[str, list[int]]:
    return {name: [step for step, _ in curve] for name, curve in curves.items()}


@pytest.mark.tensorboard
@pytest.mark.compiles
@pytest.mark.subprocess
def test_a_resumed_run_continues_the_curves_without_duplicated_or_missing_steps(tmp_path):
    """Killed after writing epoch 2's events but with the checkpoint of epoch 1
    (as with ``--checkpoint-every 2``, or a kill between the two writes):
    the resumed run writes epochs 2 and 3, and TensorBoard shows each step once."""
    config = write_config(tmp_path / "run")
    folder = tmp_path / "tb"
    checkpoint = tmp_path / "run" / "run_checkpoint.h5"
    kept = tmp_path / "epoch1_checkpoint.h5"

    def stop_after_two(train):
        epochs = train.model.monitor.get_epochs_seen()
        if epochs == 1:
            shutil.copy(checkpoint, kept)
        if epochs == 2:
            train.request_stop("SIGTERM")

    with pytest.raises(StopRequested):
        TrainingJob(config, quiet=True, tensorboard=folder).run(on_epoch=stop_after_two)
    first = scalars(read_events(folder))
    assert set(_steps(first)["train_objective"]) == {0, 1, 2}
    shutil.copy(kept, checkpoint)

    resumed = TrainingJob(config, quiet=True, resume=True, tensorboard=folder).run()
    assert resumed.model.monitor.get_epochs_seen() == EPOCHS
    events = read_events(folder)
    curves = monitor_curves(resumed.model)
    assert all(steps == list(range(EPOCHS + 1)) for steps in _steps(curves).values())
    assert scalars(events) == curves
    # the first session's steps 0 and 1 stay, its orphaned step 2 is replaced
    objective = dict(scalars(events)["train_objective"])
    assert [objective[s] for s in (0, 1)] == [v for s, v in first["train_objective"][:2]]
    assert len(os.listdir(folder)) == 2
    text = tensorboard.as_markdown_code(config.read_text())
    assert config_texts(events) == [(0, text), (2, text)]


def _without_tensorboardx(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import raises ImportError


def test_without_the_extra_the_flag_fails_in_one_line_naming_it(tmp_path, monkeypatch, capsys):
    _without_tensorboardx(monkeypatch)
    config = write_config(tmp_path / "run")
    hint = r'pip install -e "\.\[tensorboard\]"'
    with pytest.raises(MissingExtraError, match=r"\[tensorboard\] extra: " + hint):
        TrainingJob(config, tensorboard=tmp_path / "tb")
    with pytest.raises(MissingExtraError, match=hint):
        tensorboard.TensorBoard(str(tmp_path / "tb"))
    assert train_cli.main([str(config), "--tensorboard", str(tmp_path / "tb")]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: TensorBoard logging needs tensorboardX, the [tensorboard] extra: "
        'pip install -e ".[tensorboard]"\n'
    )
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["run.yaml"]


@pytest.mark.subprocess
def test_importing_the_package_and_its_programs_does_not_import_tensorboardx():
    code = (
        "import sys\n"
        "import pylearn_vae.job, pylearn_vae.cli.train, pylearn_vae.train_extensions.tensorboard\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorboardX', 'tensorboard')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout == "[]\n"


@pytest.mark.tensorboard
@pytest.mark.parametrize("kind", ["fifo", "file"])
def test_a_tensorboard_path_that_is_no_folder_is_refused_in_one_line(tmp_path, kind, capsys):
    config = write_config(tmp_path / "run")
    target = tmp_path / kind
    if kind == "fifo":
        os.mkfifo(target)
        what = "a FIFO (named pipe)"
    else:
        target.write_text("notes\n")
        what = "a regular file"
    assert train_cli.main([str(config), "--quiet", "--tensorboard", str(target)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: tensorboard folder {target} is {what}, not a folder; give the path of a folder\n"
    )
    files = sorted(p.name for p in (tmp_path / "run").iterdir() if not p.name.startswith("."))
    assert files == ["run.yaml"]  # (the lock files of refused runs are left, as ever)
