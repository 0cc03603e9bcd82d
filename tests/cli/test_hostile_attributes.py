"""HDF5 attributes that lie about their size, given to the real programs in subprocesses.

Each program runs with its address space limited to ``LIMIT`` bytes: a
string attribute whose header declares 4 GiB made HDF5 allocate and clear
4 GiB before noticing the lie. Every case must end within seconds with one
error line naming the file and the attribute.
"""

from __future__ import annotations

import re
import shutil

import h5py
import pytest

from pylearn_vae.config import yaml_parse
from pylearn_vae.monitor import Monitor, MonitorChannel
from pylearn_vae.persistence import save
from tests.helpers.configs import MODEL_YAML
from tests.helpers.hostile_hdf5 import forge_string_length
from tests.helpers.runs import run_script

LIMIT = 3 << 30
ABSURD = 0xFFFF_FFF0  # the largest length a variable-length string header can declare, nearly


def cli(script: str, *args):
    proc = run_script(script, *args, address_space=LIMIT)
    return proc.returncode, proc.stderr, proc.stdout


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_attributes")
    model = yaml_parse.load(MODEL_YAML)
    channel = MonitorChannel("valid_objective")
    channel.val_record, channel.epoch_record = [99.5], [1]
    channel.batch_record, channel.example_record, channel.time_record = [5], [500], [1.5]
    Monitor.get_monitor(model).channels["valid_objective"] = channel
    save(folder / "good.h5", model)
    with h5py.File(folder / "good.h5", "r") as handle:
        text = handle.attrs["model_yaml"]

    def variant(name, change=None, forge=None):
        shutil.copy(folder / "good.h5", folder / name)
        if change is not None:
            with h5py.File(folder / name, "r+") as handle:
                change(handle)
        if forge is not None:
            forge_string_length(folder / name, *forge)

    variant("absurd.h5", forge=(text, ABSURD))
    variant("big.h5", lambda h: h.attrs.__setitem__("model_yaml", "#" * (24 << 20)))
    variant(
        "reference.h5",
        lambda h: h.attrs.create("model_yaml", data=h["params"].ref, dtype=h5py.ref_dtype),
    )
    # A checkpoint whose stored training YAML declares 4 GiB: read by a fresh run's check
    # for an unfinished run, before anything else.
    config_text = "# the configuration this run was started from\n" + "#" * 1000 + "\n"

    def as_checkpoint(handle):
        handle.attrs["format"] = "checkpoint"
        handle.attrs["config_yaml"] = config_text

    variant("run_checkpoint.h5", as_checkpoint, forge=(config_text, ABSURD))
    (folder / "run.yaml").write_text("!obj:pylearn_vae.train.Train {}\n")
    return folder


@pytest.mark.parametrize(
    ("script", "name", "message"),
    [
        (
            "print_monitor.py",
            "absurd.h5",
            r"absurd\.h5: attribute 'model_yaml' of / declares 4,294,967,280 bytes, more than "
            r"the 16,777,216 pylearn_vae reads; refusing to read it$",
        ),
        (
            "evaluate.py",
            "big.h5",
            r"big\.h5: attribute 'model_yaml' of / declares 25,165,824 bytes, more than the",
        ),
        (
            "show_samples.py",
            "reference.h5",
            r"reference\.h5: attribute 'model_yaml' of / is not a string or a number",
        ),
    ],
)
@pytest.mark.subprocess
def test_model_programs_refuse_lying_attributes_in_bounded_memory(files, script, name, message):
    code, err, _ = cli(script, files / name)
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and re.search(message, lines[0]), err
    assert str(files / name) in lines[0]
    assert "Traceback" not in err and "MemoryError" not in err


@pytest.mark.subprocess
def test_fresh_run_next_to_a_checkpoint_with_a_lying_attribute(files):
    code, err, _ = cli("train.py", files / "run.yaml")
    assert code == 2, err
    assert re.search(
        r"run_checkpoint\.h5 exists but cannot be read \(\S+run_checkpoint\.h5: attribute "
        r"'config_yaml' of / declares 4,294,967,280 bytes",
        err,
    ), err
    assert "--restart" in err and "--resume" in err
    assert "Traceback" not in err


@pytest.mark.subprocess
def test_the_limit_leaves_room_for_a_good_file(files):
    """The address-space limit alone does not make the programs fail."""
    code, err, out = cli("print_monitor.py", files / "good.h5")
    assert code == 0, err
    assert "valid_objective: 99.5" in out, out
