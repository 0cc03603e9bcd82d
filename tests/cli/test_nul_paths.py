"""A path holding a NUL character (which no file name can hold) is refused with a
message naming where it came from (the YAML file and key, or the flag) and the
value, escaped: not only Python's "embedded null byte"."""

from __future__ import annotations

import re

import pytest

from pylearn_vae.cli import (
    download_binarized_mnist,
    evaluate,
    migrate_yaml,
    plot_monitor,
    show_samples,
    sweep,
)
from pylearn_vae.config import yaml_parse
from pylearn_vae.errors import ConfigError

NUL_NAME = "out\0put"
ESCAPED = re.escape(r"'out\x00put")


@pytest.mark.parametrize(
    ("main", "argv", "flag"),
    [
        (evaluate.main, ["model.h5", "--json", NUL_NAME + ".json"], "--json"),
        (show_samples.main, ["model.h5", "--out", NUL_NAME + ".png"], "--out"),
        (plot_monitor.main, ["model.h5", "--channels", "x", "--out", NUL_NAME], "--out"),
        (migrate_yaml.main, ["in.yaml", "--output", NUL_NAME + ".yaml"], "--output"),
        (sweep.main, ["sweep.yaml", "--out", NUL_NAME], "--out"),
        (sweep.main, ["sweep.yaml", "--storage", NUL_NAME], "--storage"),
        (download_binarized_mnist.main, ["--data-path", NUL_NAME, "--quiet"], "--data-path"),
    ],
    ids=[
        "evaluate-json",
        "show_samples-out",
        "plot_monitor-out",
        "migrate-output",
        "sweep-out",
        "sweep-storage",
        "download-data-path",
    ],
)
def test_an_output_flag_with_a_nul_is_named_with_its_value(
    main, argv, flag, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.yaml").write_text("a: 1\n")
    code = main(argv)
    err = capsys.readouterr().err
    assert code in (1, 2), err
    assert re.fullmatch(
        rf"error: {re.escape(flag)} {ESCAPED}\S*' contains a NUL character \(\\x00\), which no "
        r"file name can hold\n",
        err,
    ), err
    assert list(tmp_path.iterdir()) == [tmp_path / "in.yaml"]


EXTENSION = "!obj:pylearn_vae.train_extensions.{} {{ {} }}"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (
            EXTENSION.format(
                "best_params.MonitorBasedSaveBest",
                'channel_name: valid_objective, save_path: "best\\0model.h5"',
            ),
            "MonitorBasedSaveBest: save_path 'best",
        ),
        (
            EXTENSION.format("snapshots.EpochSnapshots", 'save_path: "e{epoch}\\0.h5", every: 1'),
            "EpochSnapshots: save_path 'e{epoch}",
        ),
    ],
    ids=["MonitorBasedSaveBest", "EpochSnapshots"],
)
def test_a_save_path_with_a_nul_names_the_yaml_file_and_the_value(text, key):
    with pytest.raises(ConfigError) as raised:
        yaml_parse.load(text, source="run.yaml")
    message = str(raised.value)
    assert message.startswith("run.yaml, line 1, column 1: "), message
    assert key in message and r"\x00" in message and "\0" not in message
    assert "contains a NUL character" in message and "embedded null" not in message


def test_trains_save_path_with_a_nul_names_the_yaml_file(tmp_path, mnist_root, monkeypatch):
    from tests.helpers.configs import SMALL_MNIST_YAML

    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(mnist_root))
    text = SMALL_MNIST_YAML.replace("'PATH'", '"model\\0.h5"')
    with pytest.raises(
        ConfigError,
        match=r"^train\.yaml, line 1, column 1: .*Train: save_path "
        r"'model\\x00\.h5' contains a NUL character",
    ):
        yaml_parse.load(text, source="train.yaml")
