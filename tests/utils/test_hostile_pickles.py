"""Crafted ``.pkl`` files: every one is refused, runs nothing and reads nothing outside.

The cases come from :mod:`tests.utils.hostile_pickles`. A test also checks
that the payloads are real: Python's own ``pickle.loads`` runs them.
"""

from __future__ import annotations

import contextlib
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pylearn_vae.persistence.checks import SizeBound
from pylearn_vae.utils import serial
from pylearn_vae.utils.serial import ModelFileError
from tests.conftest import make_vae
from tests.utils import hostile_pickles as hp
from tests.utils.audit import ACTIONS, outside_effects, recording

FOLDER = tempfile.mkdtemp(prefix="pylearn_vae_hostile_")
CASES = (
    hp.walk_cases(FOLDER)
    + hp.direct_cases(FOLDER)
    + hp.opcode_cases(FOLDER)
    + hp.numpy_cases(FOLDER)
)

SECRET = hp.SECRET


@pytest.fixture(scope="module", autouse=True)
def folder():
    Path(FOLDER, SECRET).write_text("4242424\n")
    # Import what a real model pickle needs, so that loading it opens no module files.
    model_path = Path(FOLDER, "good.pkl")
    serial.save(model_path, make_vae(seed=1))
    serial.load(model_path)
    yield Path(FOLDER)
    shutil.rmtree(FOLDER, ignore_errors=True)


def _markers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(hp.MARKER))


def _refused(case: hp.Case, folder: Path, name: str = "model.pkl") -> None:
    path = folder / name
    path.write_bytes(case.data)
    modules = set(sys.modules)
    with recording() as events:
        with pytest.raises(ModelFileError, match=case.match):
            serial.load(path)
    assert outside_effects(events, path, SECRET) == []
    assert [m for m in set(sys.modules) - modules if not m.startswith("pylearn_vae.models")] == []
    assert _markers(folder) == []
    path.unlink()


def test_there_are_enough_cases():
    assert len(CASES) >= 150
    assert sum(c.live for c in CASES) >= 90
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_crafted_pickle_is_refused_and_runs_nothing(case, folder):
    _refused(case, folder)


def test_swapped_real_model_pickles_are_refused(folder):
    model = make_vae(seed=2)
    cases = hp.swapped_model_cases(model, FOLDER)
    assert len(cases) == 20
    for case in cases:
        _refused(case, folder)


def test_payloads_are_live_under_plain_pickle(folder):
    """The generator makes real exploits: unrestricted unpickling acts on every live case."""
    model = make_vae(seed=2)
    live = [c for c in CASES if c.live] + hp.swapped_model_cases(model, FOLDER)
    inert = []
    for case in live:
        with recording() as events:
            with contextlib.suppress(Exception):
                result = pickle.loads(case.data)
                del result
        deadline = time.time() + 5
        while not _markers(folder) and any(e == "subprocess.Popen" for e, _ in events):
            if time.time() > deadline:
                break
            time.sleep(0.01)
        acted = _markers(folder) or any(
            event in ACTIONS - {"compile"} or (event == "open" and SECRET in arg)
            for event, arg in events
        )
        if not acted:
            inert.append(case.name)
        for marker in _markers(folder):
            (folder / marker).unlink()
    assert inert == [], "\n".join(inert)


def test_a_real_model_still_loads(folder):
    model = make_vae(seed=3)
    path = folder / "real.pkl"
    serial.save(path, model)
    with recording() as events:
        clone = serial.load(path)
    assert outside_effects(events, path, SECRET) == []
    for a, b in zip(model.get_param_values(), clone.get_param_values()):
        assert (a == b).all()


@pytest.mark.parametrize(
    ("owner", "attribute"),
    [("model", "nhid"), ("model", "nvis"), ("space", "dim"), ("layer", "dim")],
)
def test_size_attributes_must_match_the_stored_parameters(folder, owner, attribute):
    """Small arrays with nhid = 10**9 would make sampling allocate without bound."""
    model = make_vae(seed=4)
    target = {
        "model": model,
        "space": model.get_input_space(),
        "layer": model.posterior.mlp.layers[0],
    }[owner]
    setattr(target, attribute, 10**9)
    path = folder / "sizes.pkl"
    serial.save(path, model)
    with pytest.raises(
        ModelFileError,
        match=rf"{path}: \w+\.{attribute} is 1000000000, but no parameter in the file has that size",
    ):
        serial.load(path)


def test_a_size_no_array_has_is_believed_up_to_the_largest_array():
    """A convolutional model's 784 pixels are no parameter's dimension (4x4
    kernels, 7x7x32 maps), but its dense layers store more numbers than that."""
    bound = SizeBound([(16, 1, 4, 4), (32, 1568), (16,)])
    assert bound.allows(784) and bound.allows(1568) and bound.allows(32 * 1568)
    assert not bound.allows(32 * 1568 + 1)
    assert not SizeBound([]).allows(1)
