"""Crafted ``.h5`` model files: links, outside storage, odd dtypes, lying shapes, hostile YAML.

Each case starts from a real model file and changes one thing. Every one
must be refused with a :class:`ModelFileError` naming the file, before any
data are read, and must run nothing (checked with audit events and a marker
file a payload would create).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from pylearn_vae import persistence
from pylearn_vae.persistence import ModelFileError
from tests.helpers.audit import outside_effects, recording
from tests.helpers.configs import MODEL_YAML
from tests.helpers.hostile_hdf5 import (
    BIAS,
    MARKER,
    SECRET,
    forge_string_length,
    make_cases,
    make_folder,
)

CASES = [pytest.param(change, match, id=name) for name, change, match in make_cases()]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = make_folder(tmp_path_factory.mktemp("hostile_h5"))
    # Import everything a model file needs, so that loading opens no module files.
    persistence.load(folder / "good.h5")
    return folder


def test_there_are_enough_cases():
    assert len(CASES) >= 75


@pytest.mark.parametrize(("change", "match"), CASES)
def test_crafted_hdf5_model_is_refused(folder, change, match):
    path = folder / "model.h5"
    shutil.copy(folder / "good.h5", path)
    with h5py.File(path, "r+") as handle:
        change(handle, folder)
    with recording() as events:
        with pytest.raises(ModelFileError, match=match) as info:
            persistence.load(path)
    assert str(path) in str(info.value)
    assert outside_effects(events, path, SECRET) == []
    assert not (folder / MARKER).exists()
    assert not Path(str(folder / MARKER) + ".npy").exists()
    path.unlink()


def test_a_large_seed_is_not_taken_for_a_size(folder):
    path = folder / "seeded.h5"
    shutil.copy(folder / "good.h5", path)
    with h5py.File(path, "r+") as handle:
        handle.attrs["model_yaml"] = MODEL_YAML.replace("seed: 1", "seed: 4000000000")
    model = persistence.load(path)
    assert [p.get_value().shape for p in model.get_params()]
    path.unlink()


def test_the_good_file_keeps_its_monitor_history(folder):
    channel = persistence.load(folder / "good.h5").monitor.channels["valid_objective"]
    assert channel.val_record == [110.5, 99.25] and channel.example_record == [0, 500]
    assert channel.time_record == [0.0, 1.5]


def test_the_good_file_loads_and_dollar_variables_stay_literal(folder, monkeypatch):
    path = folder / "dollar.h5"
    shutil.copy(folder / "good.h5", path)
    with h5py.File(path, "r+") as handle:
        handle.attrs["model_yaml"] = handle.attrs["model_yaml"].replace('"h"', '"${HOME}"', 1)
        for name in list(handle["params"]):
            if name.startswith("conditional_h_"):
                handle["params"].move(name, name.replace("_h_", "_${HOME}_"))
    monkeypatch.setenv("HOME", "/leaked")
    model = persistence.load(path)
    names = [p.name for p in model.get_params()]
    assert any("${HOME}" in n for n in names), names
    assert not any("/leaked" in n for n in names)


@pytest.mark.parametrize("name", ["fifo.h5", "fifo.pkl", "zero.h5", "zero.pkl", "folder.h5"])
def test_fifos_devices_and_folders_are_refused_up_front(folder, name):
    path = folder / name
    if name.startswith("fifo"):
        os.mkfifo(path)
    elif name.startswith("zero"):
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    kind = {"fifo": r"a FIFO \(named pipe\)", "zero": "a device", "folder": "a directory"}[
        name.split(".")[0]
    ]
    with pytest.raises(
        ModelFileError, match=rf"file {path} is {kind}; give the path of a regular file"
    ):
        persistence.load(path)


def test_non_finite_models_are_never_saved(folder):
    model = persistence.load(folder / "good.h5")
    bias = next(p for p in model.get_params() if p.name == BIAS)
    value = bias.get_value()
    value[0] = -np.inf
    bias.set_value(value)
    for suffix in (".h5", ".pkl"):
        target = folder / f"good{suffix}"
        before = target.read_bytes()
        with pytest.raises(
            ModelFileError,
            match=rf"not saving {target}: parameter 'posterior_mu_b' has infinite values; the previous file \(if any\) is unchanged",
        ):
            persistence.save(target, model)
        assert target.read_bytes() == before


@pytest.mark.parametrize(
    ("length", "match"),
    [
        ((16 << 20) + 1, r"attribute 'model_yaml' of / declares 16,777,217 bytes, more than"),
        (100, r"damaged HDF5 attribute 'model_yaml' \(OSError: "),
    ],
    ids=["over the limit", "shorter than stored"],
)
def test_a_forged_string_length_is_refused_with_the_file_named(folder, length, match):
    path = folder / "forged.h5"
    shutil.copy(folder / "good.h5", path)
    with h5py.File(path, "r") as handle:
        text = handle.attrs["model_yaml"]
    forge_string_length(path, text, length)
    with pytest.raises(ModelFileError, match=match) as info:
        persistence.load(path)
    assert str(info.value).startswith(str(path))
    path.unlink()


def test_sizes_that_square_a_stored_vector_are_refused_within_the_build_budget(folder):
    # One stored vector of 20,000 numbers (80 kB) makes 20,000 a believable
    # size; a YAML then asking for 20,000 x 20,000 layers would allocate
    # some 6 GB (float64 draws, float32 copies) before the shapes could be
    # compared. The build's memory budget refuses it at once.
    n = 20_000
    path = folder / "squared.h5"
    shutil.copy(folder / "good.h5", path)
    with h5py.File(path, "r+") as handle:
        handle["params"].create_dataset("pad", data=np.zeros(n, "<f4"))
        handle.attrs["model_yaml"] = MODEL_YAML.replace("nvis: 12", f"nvis: {n}").replace(
            "dim: 5", f"dim: {n}"
        )
    import resource

    limit = resource.getrlimit(resource.RLIMIT_AS)
    start = time.monotonic()
    with pytest.raises(ModelFileError, match=r"squared\.h5: building the model .* justify"):
        persistence.load(path)
    assert time.monotonic() - start < 5
    assert resource.getrlimit(resource.RLIMIT_AS) == limit  # (the budget is lifted again)
    # The same sizes with the stored numbers to back them are within budget.
    path.unlink()
