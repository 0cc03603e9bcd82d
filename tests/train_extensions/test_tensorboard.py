"""The TensorBoard extension and ``--tensorboard``: the curves read back with
TensorBoard's own reader equal the monitor's records (as float32), a resumed
run continues them without a duplicated or a missing step, and without the
[tensorboard] extra nothing imports tensorboardX and asking for it fails in
one line naming the extra.

In-process, on the tiny model of :mod:`tests.helpers.tiny_run` (no MNIST).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pylearn_vae.cli import train as train_cli
from pylearn_vae.errors import MissingExtraError
from pylearn_vae.job import TrainingJob
from pylearn_vae.train_extensions import tensorboard
from tests.helpers.tiny_run import killed_after_epoch_two, monitor_curves, write_tiny_config

EPOCHS = 3

#: The extension as a YAML user writes it (image grids at epochs 0 and 2).
YAML_EXTENSION = (
    "[ !obj:pylearn_vae.train_extensions.tensorboard.TensorBoard { "
    "log_dir: '${PYLEARN2_TRAIN_DIR}tb', images_every: 2 } ]"
)


def write_config(folder: Path, extensions: str = "[]") -> Path:
    return write_tiny_config(folder, EPOCHS, extensions)


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


def images(accumulator) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Every image event, decoded: tag -> [(step, grey levels (rows, cols))]."""
    from PIL import Image

    decoded = {}
    for tag in accumulator.Tags()["images"]:
        decoded[tag] = [
            (event.step, np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))[..., 0])
            for event in accumulator.Images(tag)
        ]
    return decoded


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
    assert {"learning_rate", "momentum"} <= set(curves)
    assert config_texts(events) == [(0, tensorboard.as_markdown_code(config.read_text()))]
    grids = images(events)
    assert sorted(grids) == sorted(tensorboard.IMAGE_TAGS)
    assert all([step for step, _ in grids[tag]] == [0, 2] for tag in grids)
    # 16 visible units: 4 x 4 tiles, 8 x 8 of them with 1-pixel gaps
    assert all(image.shape == (41, 41) for tag in grids for _, image in grids[tag])
    samples = dict(grids["samples"])
    assert not np.array_equal(samples[0], samples[2])  # the model changed, the draws did not
    # the first tile of the reconstructions is the first test (here: training) example
    first = train.dataset.get_design_matrix()[0].reshape(4, 4)
    for _, image in grids["reconstructions"]:
        np.testing.assert_array_equal(image[1:5, 1:5], (first * 255).astype(np.uint8))


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
    killed_after_epoch_two(config, tensorboard=folder)
    first = scalars(read_events(folder))
    assert set(_steps(first)["train_objective"]) == {0, 1, 2}

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


@pytest.mark.tensorboard
@pytest.mark.compiles
def test_the_image_grids_leave_the_training_noise_alone(tmp_path):
    """The grids draw from the prior with a private generator: the same run
    with a grid after every epoch ends with the same parameters, bit for bit,
    and the same draws give the same grid twice."""
    extension = (
        "[ !obj:pylearn_vae.train_extensions.tensorboard.TensorBoard { "
        "log_dir: '${PYLEARN2_TRAIN_DIR}tb', images_every: 1 } ]"
    )
    plain = TrainingJob(write_config(tmp_path / "plain"), quiet=True).run()
    watched = TrainingJob(write_config(tmp_path / "watched", extension), quiet=True).run()
    for a, b in zip(plain.model.get_params(), watched.model.get_params(), strict=True):
        np.testing.assert_array_equal(a.get_value(), b.get_value())
    assert [step for step, _ in images(read_events(tmp_path / "watched" / "tb"))["samples"]] == [
        0,
        1,
        2,
        3,
    ]
    pictures = watched.extensions[0]._pictures.pictures
    np.testing.assert_array_equal(pictures.samples(), pictures.samples())


@pytest.mark.tensorboard
def test_images_every_is_checked(tmp_path):
    for bad in (-1, 1.5, True, "10"):
        with pytest.raises(ValueError, match=r"images_every must be a whole number of epochs"):
            tensorboard.TensorBoard(str(tmp_path / "tb"), images_every=bad)


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


@pytest.mark.tensorboard
def test_the_tensorboardx_internals_the_event_file_uses_are_where_they_were():
    """The extension writes its events itself, synchronously (tensorboardX's
    writer thread keeps a step in memory after its flush): these are the
    tensorboardX names it relies on; if one moves, this says which."""
    import importlib

    for module, names in (
        ("tensorboardX.record_writer", ["RecordWriter"]),
        ("tensorboardX.proto.event_pb2", ["Event", "SessionLog"]),
        ("tensorboardX.summary", ["scalar", "text", "image"]),
    ):
        found = importlib.import_module(module)
        missing = [name for name in names if not hasattr(found, name)]
        assert not missing, f"tensorboardX moved {module}.{missing}"
