"""Hostile files given to the real command-line programs, in subprocesses: each ends quickly
with a one-line error naming the file, exit status 1 or 2, and runs nothing."""

from __future__ import annotations

import os
import re
import shutil

import h5py
import pytest

from pylearn_vae import persistence
from pylearn_vae.config import yaml_parse
from tests.helpers import hostile_pickles as hp
from tests.helpers.configs import MODEL_YAML
from tests.helpers.runs import run_script


def cli(script: str, *args, cwd=None):
    proc = run_script(script, *args, cwd=cwd)
    return proc.returncode, proc.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_hostile")
    model = yaml_parse.load(MODEL_YAML)
    persistence.save(folder / "good.h5", model)
    os.mkfifo(folder / "fifo.pkl")
    os.mkfifo(folder / "fifo.h5")
    (folder / "zero.pkl").symlink_to("/dev/zero")
    marker = folder / hp.MARKER
    walk = hp.program(
        hp.call(
            hp.stack_global("pylearn_vae.space", "np.f2py.subprocess.Popen"),
            hp.tup(hp.lst(hp.text("touch"), hp.text(str(marker)))),
        )
    )
    (folder / "walk.pkl").write_bytes(walk)
    shutil.copy(folder / "good.h5", folder / "pkl_yaml.h5")
    with h5py.File(folder / "pkl_yaml.h5", "r+") as handle:
        handle.attrs["model_yaml"] = f"!pkl: '{folder / 'walk.pkl'}'"
    shutil.copy(folder / "good.h5", folder / "link.h5")
    with h5py.File(folder / "link.h5", "r+") as handle:
        del handle["params/posterior_mu_b"]
        handle["params/posterior_mu_b"] = h5py.ExternalLink("/etc/passwd", "/")
    return folder


@pytest.mark.parametrize(
    ("script", "name", "message"),
    [
        ("evaluate.py", "fifo.pkl", r"model file \S+fifo\.pkl is a FIFO \(named pipe\)"),
        ("evaluate.py", "fifo.h5", r"model file \S+fifo\.h5 is a FIFO"),
        ("show_samples.py", "zero.pkl", r"model file \S+zero\.pkl is a device"),
        (
            "evaluate.py",
            "walk.pkl",
            r"walk\.pkl refers to pylearn_vae\.space\.np\.f2py\.subprocess\.Popen",
        ),
        ("print_monitor.py", "walk.pkl", r"not on pylearn_vae's allow-list"),
        (
            "evaluate.py",
            "pkl_yaml.h5",
            r"pkl_yaml\.h5:model_yaml, line 1, column 1: !pkl: may not be used",
        ),
        (
            "print_monitor.py",
            "link.h5",
            r"link\.h5: /params/posterior_mu_b is a link to /etc/passwd:/",
        ),
    ],
)
@pytest.mark.subprocess
def test_model_programs_refuse_hostile_files(files, script, name, message):

    code, err = cli(script, files / name)
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and re.search(message, lines[0]), err
    assert "Traceback" not in err
    assert not (files / hp.MARKER).exists()


@pytest.mark.subprocess
def test_train_refuses_a_fifo_config_and_hostile_yaml_with_locations(tmp_path):
    os.mkfifo(tmp_path / "fifo.yaml")
    code, err = cli("train.py", tmp_path / "fifo.yaml")
    assert code == 2 and f"configuration file {tmp_path / 'fifo.yaml'} is not a regular file" in err
    laughs = tmp_path / "laughs.yaml"
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 10)}]")
    laughs.write_text("\n".join(lines) + "\n")
    code, err = cli("train.py", laughs)
    assert code == 1 and re.search(
        rf"{laughs}, line \d+, column \d+: this YAML expands to more than 100,000", err
    ), err
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: caf\xe9\n")
    code, err = cli("train.py", latin)
    assert code == 1 and f"{latin} is not UTF-8 text (byte 6)" in err, err
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 50_000 + "]" * 50_000)
    code, err = cli("train.py", deep)
    assert (
        code == 1 and f"{deep}, line 1, column 101: invalid YAML: this YAML is nested more" in err
    ), err
    assert "Traceback" not in err


@pytest.mark.subprocess
def test_fresh_run_next_to_a_fifo_checkpoint_is_refused(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("!obj:pylearn_vae.train.Train {}\n")
    os.mkfifo(tmp_path / "run_checkpoint.h5")
    code, err = cli("train.py", config)
    assert code == 2, err
    assert "run_checkpoint.h5 exists but cannot be read" in err and "is a FIFO" in err
    assert "--restart" in err and "--resume" in err


@pytest.mark.subprocess
def test_migrate_yaml_refuses_deep_nesting_and_fifos(tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 50_000 + "]" * 50_000)
    code, err = cli("migrate_yaml.py", deep, "--check")
    assert (
        code == 2 and f"error: {deep}, line 1, column 101: this YAML is nested more than 100" in err
    ), err
    os.mkfifo(tmp_path / "f.yaml")
    code, err = cli("migrate_yaml.py", tmp_path / "f.yaml")
    assert code == 2 and f"the YAML file {tmp_path / 'f.yaml'} is a FIFO (named pipe)" in err, err


FORGED = "valid_objective: 85.0\nerror: forged line"


@pytest.mark.parametrize("program", ["print", "plot-list", "plot-unknown"])
def test_a_channel_name_cannot_forge_output_lines(tmp_path, capsys, program):
    from pylearn_vae.cli.plot_monitor import main, print_main
    from pylearn_vae.monitor import Monitor, MonitorChannel

    model = yaml_parse.load(MODEL_YAML)
    channel = MonitorChannel(FORGED)
    channel.val_record, channel.epoch_record = [1.0], [0]
    channel.batch_record, channel.example_record, channel.time_record = [0], [0], [0.0]
    Monitor.get_monitor(model).channels[FORGED] = channel
    path = tmp_path / "forged.h5"
    persistence.save(path, model)
    if program == "print":
        code = print_main([str(path)])
    elif program == "plot-list":
        code = main([str(path)])
    else:
        code = main([str(path), "--channels", "nope", "--out", str(tmp_path / "c.png")])
    out = capsys.readouterr()
    lines = (out.out + out.err).splitlines()
    assert not any(line.startswith("error: forged") for line in lines), lines
    assert code == (1 if program == "plot-unknown" else 0)
    assert "85.0\\nerror: forged line" in out.out + out.err


def test_migrate_yaml_cannot_be_made_to_print_a_forged_line(tmp_path, capsys):
    path = tmp_path / "old.yaml"
    path.write_text(
        "a: !obj:pylearn2.models.mlp.MLP%0Aerror:%20forged {}\n"
        'b: !import "pylearn2.x\\nerror: forged"\n'
    )
    from pylearn_vae.cli.migrate_yaml import main

    code, err = main([str(path), "--check"]), capsys.readouterr().err
    assert code == 1 and err.count("cannot migrate: pylearn2.") == 2, err
    assert not any(line.startswith("error: forged") for line in err.splitlines()), err


@pytest.mark.parametrize(
    ("program", "args", "message"),
    [
        ("show_samples", ["--rows", "101"], r"--rows and --cols must be from 1 to 100"),
        ("show_samples", ["--seed", "-1"], r"--seed must be >= 0, got -1"),
        ("evaluate", ["--seed", "-1"], r"--seed must be >= 0, got -1"),
        ("evaluate", ["--max-examples", "-3"], r"--max-examples must be >= 0"),
    ],
)
def test_out_of_range_arguments_are_one_line_errors(files, capsys, program, args, message):
    import importlib

    main = importlib.import_module(f"pylearn_vae.cli.{program}").main
    assert main([str(files / "good.h5"), *args]) == 1
    err = capsys.readouterr().err
    assert re.search(rf"^error: {message}", err, re.M) and "Traceback" not in err, err
