"""PolyakAveraging: the running mean of the parameters, shown between epochs.

A tiny training run (tests/helpers/tiny_run.py) records the parameters after
every step; the tests compare what the extension shows, saves and resumes
with the mean computed here by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from pylearn_vae import persistence
from pylearn_vae.config import yaml_parse
from pylearn_vae.job import TrainingJob
from pylearn_vae.train_extensions.polyak import PolyakAveraging
from tests.helpers.tiny_run import stopped_after_epoch, tiny_yaml

EPOCHS, START = 5, 2
POLYAK = (
    "[!obj:pylearn_vae.training_algorithms.sgd.PolyakAveraging { start: %d, "
    "save_path: '${PYLEARN2_TRAIN_FILE_FULL_STEM}_polyak.pkl', save_freq: 2 },"
    " !obj:pylearn_vae.train_extensions.best_params.MonitorBasedSaveBest {"
    " channel_name: 'train_objective', save_path: '${PYLEARN2_TRAIN_FILE_FULL_STEM}_best.pkl' }]"
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The tiny run with and without averaging, each recording its steps."""
    folder = tmp_path_factory.mktemp("polyak")
    out = {}
    for name, extensions in (("plain", "[]"), ("averaged", POLYAK % START)):
        train = yaml_parse.load(
            tiny_yaml(EPOCHS, extensions).replace(
                "${PYLEARN2_TRAIN_FILE_FULL_STEM}", str(folder / name)
            )
        )
        train.quiet = True
        steps, epochs = [], []

        def record(algorithm, train=train, steps=steps, epochs=epochs) -> None:
            steps.append([p.get_value() for p in train.model.get_params()])
            epochs.append(train.model.monitor.get_epochs_seen())

        train.algorithm.update_callbacks.insert(0, record)
        train.main_loop()
        out[name] = (train, steps, epochs)
    out["folder"] = folder
    return out


def _mean_after(steps, epochs, start, until):
    """The arithmetic mean of the parameters after the steps of epochs start+1 .. until."""
    chosen = [s for s, e in zip(steps, epochs, strict=True) if start <= e < until]
    return [np.mean([s[i] for s in chosen], axis=0, dtype="float64") for i in range(len(steps[0]))]


@pytest.mark.compiles
def test_averaging_leaves_the_training_itself_unchanged(runs):
    plain, averaged = runs["plain"][0], runs["averaged"][0]
    for a, b in zip(plain.model.get_params(), averaged.model.get_params(), strict=True):
        np.testing.assert_array_equal(a.get_value(), b.get_value(), err_msg=a.name)
    assert runs["plain"][1] and len(runs["plain"][1]) == len(runs["averaged"][1])


@pytest.mark.compiles
def test_the_monitor_and_the_saved_models_see_the_mean_of_the_steps_after_start(runs):
    train, steps, epochs = runs["averaged"]
    plain = runs["plain"][0]
    mean = _mean_after(steps, epochs, START, EPOCHS)
    final = persistence.load(runs["folder"] / "averaged.pkl")  # Train's save_path, at the end
    for want, got in zip(mean, final.get_params(), strict=True):
        np.testing.assert_allclose(got.get_value(), want, rtol=2e-5, atol=2e-6, err_msg=got.name)
    # save_freq 2 after start 2: epochs 4 (and not 5)
    saved = persistence.load(runs["folder"] / "averaged_polyak.pkl")
    assert saved.monitor.get_epochs_seen() == 4
    for want, got in zip(_mean_after(steps, epochs, START, 4), saved.get_params(), strict=True):
        np.testing.assert_allclose(got.get_value(), want, rtol=2e-5, atol=2e-6, err_msg=got.name)
    # the monitored objective is the plain run's up to the start, another after it
    mine = train.model.monitor.channels["train_objective"].val_record
    theirs = plain.model.monitor.channels["train_objective"].val_record
    np.testing.assert_array_equal(mine[: START + 1], theirs[: START + 1])
    assert all(a != b for a, b in zip(mine[START + 1 :], theirs[START + 1 :], strict=True))


@pytest.mark.compiles
def test_a_stopped_and_resumed_run_continues_the_same_average(runs, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(tiny_yaml(EPOCHS, POLYAK % START), encoding="utf-8")

    stopped_after_epoch(config, 3)
    resumed = TrainingJob(config, quiet=True, resume=True).run()
    straight = persistence.load(runs["folder"] / "averaged.pkl")
    again = persistence.load(tmp_path / "run.pkl")
    for a, b in zip(straight.get_params(), again.get_params(), strict=True):
        np.testing.assert_array_equal(a.get_value(), b.get_value(), err_msg=a.name)
    for a, b in zip(
        runs["averaged"][0].model.get_params(), resumed.model.get_params(), strict=True
    ):
        np.testing.assert_array_equal(a.get_value(), b.get_value(), err_msg=a.name)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"start": -1}, "start must be an integer >= 0"),
        ({"start": 1.5}, "start must be an integer >= 0"),
        ({"start": True}, "start must be an integer >= 0"),
        ({"start": 0, "save_freq": 0}, "save_freq must be an integer >= 1"),
    ],
)
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PolyakAveraging(**kwargs)


@pytest.mark.compiles
def test_a_forced_resume_with_the_extensions_reordered_names_them(tmp_path):
    from pylearn_vae.utils.files import ModelFileError

    polyak, best = (POLYAK % 0)[1:-1].split(", !obj:")
    config = tmp_path / "run.yaml"
    config.write_text(tiny_yaml(2, f"[{polyak}, !obj:{best}]"), encoding="utf-8")

    stopped_after_epoch(config, 1)
    config.write_text(tiny_yaml(2, f"[{best.join(['!obj:', ''])}, {polyak}]"), encoding="utf-8")
    with pytest.raises(
        ModelFileError,
        match=r"extension 1 of the YAML is MonitorBasedSaveBest, but the checkpoint's "
        r"extension 1 was PolyakAveraging",
    ):
        TrainingJob(config, quiet=True, resume=True, force=True).run()


def _set_up_extension():
    from types import SimpleNamespace

    from tests.helpers.models import make_vae

    polyak = PolyakAveraging(start=0)
    algorithm = SimpleNamespace(update_callbacks=[])
    polyak.setup(make_vae(nvis=4, nhid=2, hidden=3), None, algorithm)
    assert algorithm.update_callbacks == [polyak._after_step]
    return polyak


def _forged(state, how):
    name = next(iter(state["means"]))
    if how == "started":
        state["started"] = 2
    elif how == "t":
        state["t"] = np.float32(0.5)
    elif how == "nan t":
        state["t"] = np.float32("nan")
    elif how == "huge t":
        state["t"] = 1e300
    elif how == "fractional t":
        state["t"] = 1.5
    elif how == "true t":
        state["t"] = True
    elif how == "text t":
        state["t"] = "9"
    elif how == "array started":
        state["started"] = np.array([1, 0])
    elif how == "names":
        state["means"]["other"] = state["means"].pop(name)
    elif how == "shape":
        state["means"][name] = np.zeros((1, 1), "float32")
    elif how == "dtype":
        state["means"][name] = state["means"][name].astype("float64")
    elif how == "inf":
        state["means"][name] = np.full_like(state["means"][name], np.inf)
    return state


@pytest.mark.compiles
@pytest.mark.parametrize(
    ("how", "match"),
    [
        ("started", "'started' must be 0 or 1, got 2"),
        ("array started", "'started' must be 0 or 1, got ndarray"),
        ("t", r"'t' \(steps averaged\) must be a whole number from 1 to"),
        ("nan t", "'t' .* must be a whole number"),
        ("huge t", "'t' .* must be a whole number from 1 to 1099511627776, got 1e.300"),
        ("fractional t", "'t' .* got 1.5"),
        ("true t", "'t' .* got True"),
        ("text t", "'t' .* got '9'"),
        ("names", r"other parameters \(missing: \S+; not in this model: other\)"),
        ("shape", r"expected float32\["),
        ("dtype", r"is float64\["),
        ("inf", "is not finite"),
    ],
)
def test_a_forged_saved_state_is_refused_and_changes_nothing(how, match):
    polyak = _set_up_extension()
    before = polyak.state_dict()
    with pytest.raises(ValueError, match=match):
        polyak.load_state_dict(_forged(polyak.state_dict(), how))
    after = polyak.state_dict()
    assert after["started"] == before["started"] and after["t"] == before["t"]
    for name, value in before["means"].items():
        np.testing.assert_array_equal(after["means"][name], value)


@pytest.mark.compiles
def test_a_second_polyak_averaging_is_refused_at_setup():
    from types import SimpleNamespace

    from tests.helpers.models import make_vae

    model, algorithm = make_vae(nvis=4, nhid=2, hidden=3), SimpleNamespace(update_callbacks=[])
    PolyakAveraging(start=0).setup(model, None, algorithm)
    with pytest.raises(ValueError, match="two PolyakAveraging extensions"):
        PolyakAveraging(start=5).setup(model, None, algorithm)


@pytest.fixture
def stopped_run(tmp_path):
    """A tiny run with PolyakAveraging stopped after epoch 1 (its checkpoint unfinished)."""
    config = tmp_path / "run.yaml"
    config.write_text(tiny_yaml(3, "[" + (POLYAK % 0)[1:].split(", !obj:")[0] + "]"))

    stopped_after_epoch(config, 1)
    return config


@pytest.mark.compiles
@pytest.mark.parametrize(
    ("classes", "match"),
    [
        ('{"0": 7}', r"state/extension_classes/0 is not a class name"),
        (
            '{"0": "KLWarm\\u001b[31mUp' + "x" * 500 + '"}',
            r"was KLWarm\\x1b\[31mUpx+: an extension was removed or they were reordered",
        ),
    ],
)
def test_forged_extension_classes_in_a_checkpoint_are_refused_by_name(stopped_run, classes, match):
    import h5py

    from pylearn_vae.utils.files import ModelFileError

    with h5py.File(stopped_run.parent / "run_checkpoint.h5", "r+") as handle:
        handle["state/extension_classes"].attrs["json"] = classes
    with pytest.raises(ModelFileError, match=match) as caught:
        TrainingJob(stopped_run, quiet=True, resume=True).run()
    assert len(str(caught.value)) < 500 and "\x1b" not in str(caught.value)
