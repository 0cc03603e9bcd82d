"""Sweep files, dotted-key overrides and their errors (no Ray needed)."""

import os
import re

import numpy as np
import pytest

from pylearn_vae.cli import sweep as sweep_cli
from pylearn_vae.config import yaml_parse
from pylearn_vae.speedups.threads import fixed_count
from pylearn_vae.sweep.overrides import apply_overrides
from pylearn_vae.sweep.runner import make_plan, worker_env
from pylearn_vae.sweep.spec import SweepSpecError, load_spec, parse_spec
from pylearn_vae.sweep.trial import check_node, render
from tests.helpers.configs import BASE_YAML, write_sweep
from tests.helpers.paths import REPO

SPACE = """\
epochs: 4
trials: 3
search_space:
  algorithm.learning_rate: loguniform(1e-4, 3e-3)
  model.nhid: [2, 3, 1e1]
  model.seed: range(1, 7, 2)
  algorithm.batch_size: randint(10, 20)
  algorithm.learning_rule.init_momentum: uniform(0.1, 0.9)
  model.conditional.mlp.layers.0.dim: grid(8, 16)
  algorithm.learning_rule: {choice: [!obj:pylearn_vae.training_algorithms.learning_rule.Momentum {init_momentum: 0.1}]}
  save_freq: 1
"""


def test_every_form_of_the_search_space(tmp_path):
    spec = load_spec(write_sweep(tmp_path, SPACE))
    dims = {d.key: d for d in spec.dimensions}
    assert (spec.epochs, spec.trials, spec.metric, spec.mode, spec.scheduler) == (
        4,
        3,
        "valid_objective",
        "min",
        "asha",
    )
    assert spec.base == (tmp_path / "base.yaml").resolve()
    assert (dims["algorithm.learning_rate"].kind, dims["algorithm.learning_rate"].low) == (
        "loguniform",
        1e-4,
    )
    assert dims["model.nhid"].kind == "choice"
    assert dims["model.nhid"].options == ("2", "3", "1e1")  # YAML text, read by the base's loader
    assert (dims["model.seed"].kind, dims["model.seed"].options) == ("grid", ("1", "3", "5"))
    assert (dims["algorithm.batch_size"].low, dims["algorithm.batch_size"].high) == (10, 20)
    assert dims["model.conditional.mlp.layers.0.dim"].options == ("8", "16")
    assert dims["algorithm.learning_rule"].options[0].startswith("!obj:pylearn_vae.training")
    assert (dims["save_freq"].kind, dims["save_freq"].options) == ("constant", ("1",))
    assert dims["model.nhid"].where == f"{tmp_path / 'sweep.yaml'}, line 6, column 3"


@pytest.mark.parametrize(
    "line, message, column",
    [
        (
            "model.nhid: logunifrom(1, 2)",
            r"unknown search-space function logunifrom\(\) \(did you mean loguniform\?\)",
            15,
        ),
        ("model.nhid: loguniform(1e-4)", r"loguniform\(\) takes 2 numbers, got 0.0001", 15),
        ("model.nhid: loguniform(-1, 2)", r"bounds must be positive", 15),
        ("model.nhid: uniform(3, 2)", r"low must be below high", 15),
        ("model.nhid: randint(1.5, 4)", r"randint\(\) takes 2 integers", 15),
        ("model.nhid: range(0)", r"range\(\) needs at least one value", 15),
        ("model.nhid: uniform(1, 2", r"'uniform\(1, 2' lacks its closing parenthesis", 15),
        ("model.nhid: grid(1, two)", r"cannot read the arguments of grid\(1, two\)", 15),
        ("model.nhid: []", r"the list of values is empty", 3),
        ("model.nhid: {grid: 3}", r"grid needs a list", 15),
        ("model.nhid: {pick: [1]}", r"must be \{choice: \[...\]\} or \{grid: \[...\]\}", 15),
        ("model..nhid: 3", r"is not a dotted path", 3),
    ],
)
def test_bad_search_space_is_a_located_error(tmp_path, line, message, column):
    path = write_sweep(tmp_path, f"epochs: 2\nsearch_space:\n  {line}\n")
    with pytest.raises(SweepSpecError, match=message) as caught:
        load_spec(path)
    assert caught.value.where == f"{path}, line 4, column {column}"


@pytest.mark.parametrize(
    "body, message, line",
    [
        (
            "epochs: 2\nepoch: 3\nsearch_space: {model.nhid: 3}\n",
            r"unknown key 'epoch' \(did you mean epochs\?\)",
            3,
        ),
        (
            "epochs: two\nsearch_space: {model.nhid: 3}\n",
            r"epochs must be an integer, got 'two'",
            2,
        ),
        (
            "epochs: 0\nsearch_space: {model.nhid: 3}\n",
            r"epochs must be an integer from 1 to 1,000,000, got 0",
            2,
        ),
        (
            "epochs: 2\nscheduler: pbt\nsearch_space: {model.nhid: 3}\n",
            r"scheduler must be asha or hyperband or fifo",
            3,
        ),
        ("epochs: 2\nsearch_space: {}\n", r"search_space is empty", 3),
        (
            "epochs: 2\nsearch_space: {model.nhid: 3, model.nhid: 4}\n",
            r"duplicate key 'model.nhid'",
            3,
        ),
        ("epochs: 2\nsearch_space: [model.nhid]\n", r"search_space must be a mapping", 3),
        ("epochs: 2\nsearch_space: {model.nhid: [1, 2}\n", r"invalid YAML", 3),
    ],
)
def test_bad_sweep_file_is_a_located_error(tmp_path, body, message, line):
    path = write_sweep(tmp_path, body)
    with pytest.raises(SweepSpecError, match=message) as caught:
        load_spec(path)
    assert caught.value.where.startswith(f"{path}, line {line}")


def test_missing_keys_and_base(tmp_path):
    with pytest.raises(SweepSpecError, match="missing key"):
        parse_spec("base: x.yaml\n", "s.yaml", tmp_path)
    with pytest.raises(
        SweepSpecError, match=r"s.yaml, line 1, column 1: cannot read the base YAML"
    ):
        parse_spec("base: nowhere.yaml\nepochs: 1\nsearch_space: {a: 1}\n", "s.yaml", tmp_path)


def test_overrides_edit_only_the_values_named():
    text = apply_overrides(
        BASE_YAML,
        "base.yaml",
        {
            "algorithm.learning_rate": "0.02",
            "model.nhid": "7",
            "model.conditional.mlp.layers.0.dim": "32",
            "algorithm.monitoring_dataset.valid.stop": "200",
            "algorithm.learning_rule.nesterov_momentum": "true",  # a keyword not in the file
        },
    )
    assert text.startswith("# the base training YAML of the sweep tests\n")
    assert "${PYLEARN2_TRAIN_FILE_FULL_STEM}.pkl" in text
    assert "nvis: 784, nhid: 7, seed: 5," in text
    assert "nesterov_momentum: true, init_momentum: 0.5 }" in text
    tree = yaml_parse.load(text, environ={"PYLEARN2_TRAIN_FILE_FULL_STEM": "x"}, instantiate=False)
    algorithm = tree.kwargs["algorithm"]
    assert algorithm.kwargs["learning_rate"] == 0.02
    assert algorithm.kwargs["monitoring_dataset"]["valid"].kwargs["stop"] == 200
    assert (
        tree.kwargs["model"].kwargs["conditional"].kwargs["mlp"].kwargs["layers"][0].kwargs["dim"]
        == 32
    )
    assert tree.kwargs["dataset"].kwargs["stop"] == 1000  # the anchor is untouched


def test_overriding_an_anchored_value_keeps_the_anchor():
    text = "!obj:pylearn_vae.train.Train {dataset: &d 3, model: *d, algorithm: 1}"
    assert apply_overrides(text, "b.yaml", {"dataset": "4"}) == (
        "!obj:pylearn_vae.train.Train {dataset: &d 4, model: *d, algorithm: 1}"
    )


@pytest.mark.parametrize(
    "key, message",
    [
        (
            "model.nhidd",
            r"model is a pylearn_vae.models.vae.VAE \(base.yaml, line 4, column 12\) "
            r"with no key 'nhidd'; did you mean model.nhid\?",
        ),
        ("seed", r"the document is a pylearn_vae.train.Train .* with no key 'seed'"),
        (
            "algorithm.learning_rate.x",
            r"algorithm.learning_rate is the value '0.005' .*which has no keys",
        ),
        ("model.conditional.mlp.layers.1.dim", r"is a list of 1 items .*'1' is not an index"),
        (
            "algorithm.monitoring_dataset.test.stop",
            r"is a mapping \(base.yaml, line 19, column 29\) with no key 'test'",
        ),
    ],
)
def test_unknown_dotted_keys_are_located_in_both_files(key, message):
    with pytest.raises(SweepSpecError, match=message) as caught:
        apply_overrides(BASE_YAML, "base.yaml", {key: "1"}, {key: "sweep.yaml, line 9, column 3"})
    assert caught.value.where == "sweep.yaml, line 9, column 3"


def test_two_keys_on_the_same_node_are_refused():
    with pytest.raises(SweepSpecError, match="reach the same part"):
        apply_overrides(BASE_YAML, "base.yaml", {"model": "1", "model.nhid": "2"})


def test_the_epoch_budget_belongs_to_epochs(tmp_path):
    path = write_sweep(
        tmp_path,
        "epochs: 2\nsearch_space:\n  algorithm.termination_criterion: 3\n",
    )
    with pytest.raises(SweepSpecError, match=r"line 4.*set by epochs"):
        make_plan(load_spec(path))


def test_trial_yaml_sets_the_values_and_the_budget(tmp_path):
    plan = make_plan(load_spec(write_sweep(tmp_path, SPACE)))
    text = plan.trial_yaml(
        {"algorithm.learning_rate": np.float64(0.00123), "algorithm.batch_size": np.int64(12)}
    )
    assert "learning_rate: 0.00123," in text and "batch_size: 12," in text
    assert "EpochCounter {max_epochs: 4}" in text
    assert render(np.float32(0.5)) == "0.5" and render("1e-3") == "1e-3" and render(True) == "true"


def test_cli_refuses_a_bad_sweep_before_anything_starts(tmp_path, capsys):
    path = write_sweep(tmp_path, "epochs: 2\nsearch_space:\n  model.nhidd: [3, 4]\n")
    assert sweep_cli.main([str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}, line 4, column 3: model.nhidd: model is a ")
    assert "\n" not in err
    assert not (tmp_path / "sweep_sweep").exists()


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (
            "valid_objectiv",
            r"line 3, column 1: metric 'valid_objectiv' is not a monitor channel of \S+base\.yaml "
            r"\(did you mean valid_objective\?\); its channels: batches_seen, .*valid_objective",
        ),
        ("test_objective", r"line 3, column 1: metric 'test_objective' is not a monitor channel"),
        ("'123'", r"line 3, column 1: metric '123' is not a monitor channel"),
        (
            "123",
            r"line 3, column 9: metric must be the name of a monitor channel \(text\), got '123'",
        ),
        ("true", r"line 3, column 9: metric must be the name of a monitor channel \(text\)"),
        ("null", r"line 3, column 9: metric must be the name of a monitor channel \(text\)"),
        ("~", r"line 3, column 9: metric must be the name of a monitor channel \(text\)"),
        ("[valid_objective]", r"line 3, column 9: metric must be a single value, got a list"),
    ],
)
def test_a_metric_the_runs_will_not_have_is_refused_before_ray(
    tmp_path, capsys, monkeypatch, metric, message
):
    def no_sweep(*args, **kwargs):
        raise AssertionError("the sweep started")

    monkeypatch.setattr("pylearn_vae.sweep.runner.run_sweep", no_sweep)
    path = write_sweep(
        tmp_path, f"epochs: 2\nmetric: {metric}\nsearch_space:\n  model.seed: [1, 2]\n"
    )
    assert sweep_cli.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(rf"error: {re.escape(str(path))}, {message}.*\n", err), err
    assert not (tmp_path / "sweep_sweep").exists()


@pytest.mark.parametrize(
    "metric",
    [
        "valid_objective",
        "valid_kl_divergence_term",
        "valid_reconstruction_mse",
        "momentum",
        "learning_rate",
        "epochs_seen",
        "'valid_objective'",
    ],
)
def test_every_channel_of_the_run_is_a_metric(tmp_path, metric):
    path = write_sweep(tmp_path, f"epochs: 2\nmetric: {metric}\nsearch_space: {{model.seed: 1}}\n")
    assert make_plan(load_spec(path)).metric == metric.strip("'")


def test_the_default_metric_is_checked_too(tmp_path):
    path = write_sweep(tmp_path, "epochs: 2\nsearch_space: {model.seed: 1}\n")
    (tmp_path / "base.yaml").write_text(BASE_YAML.replace("'valid'", "'held_out'"))
    with pytest.raises(
        SweepSpecError,
        match=r"\(metric: valid_objective, the default\): metric 'valid_objective' is not a "
        r"monitor channel .*held_out_objective",
    ):
        make_plan(load_spec(path))


def test_a_node_without_the_data_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(tmp_path / "empty"))
    plan = make_plan(load_spec(write_sweep(tmp_path, "epochs: 1\nsearch_space: {model.nhid: 3}\n")))
    problem = check_node(plan)
    assert problem.startswith("node ")
    assert f"lacks the data (PYLEARN2_DATA_PATH={tmp_path / 'empty'})" in problem
    assert "binarized MNIST split 'train' is not installed" in problem


def test_the_example_sweep_fits_the_seed_yaml():
    spec = load_spec(REPO / "yaml" / "sweep_vae_mnist.yaml")
    assert spec.base == REPO / "yaml" / "vae_mnist.yaml"
    plan = make_plan(spec)
    text = plan.trial_yaml(
        {"algorithm.learning_rate": 0.001, "model.nhid": "50", "model.seed": "1"}
    )
    tree = yaml_parse.load(text, environ={"PYLEARN2_TRAIN_FILE_FULL_STEM": "x"}, instantiate=False)
    model = tree.kwargs["model"].kwargs
    assert (model["nhid"], model["seed"]) == (50, 1)
    assert tree.kwargs["algorithm"].kwargs["termination_criterion"].kwargs == {"max_epochs": 20}


class FakeResult:
    """The parts of a Ray Tune Result that the results table reads."""

    def __init__(self, trial_id, reports, done=True, error=None):
        import pandas

        self.metrics = {**(reports[-1] if reports else {}), "trial_id": trial_id, "done": done}
        self.metrics_dataframe = pandas.DataFrame(reports) if reports else None
        self.error = error
        self.path = f"/x/run_trial_{trial_id}"
        self.config = {"model.nhid": "3"}


def test_each_trial_gets_its_status_and_reason(tmp_path):
    pytest.importorskip("pandas", reason="comes with the sweep extra (ray[tune])")
    from pylearn_vae.sweep.runner import _row

    spec = load_spec(write_sweep(tmp_path, "epochs: 2\nsearch_space: {model.nhid: [3]}\n"))

    def report(epoch, value, **extra):
        return {"epochs_seen": epoch, "valid_objective": value, "seconds_per_epoch": 0.5, **extra}

    rows = {
        name: _row(result, spec, {})
        for name, result in {
            "done": FakeResult("a", [report(1, 300.0), report(2, 250.0)]),
            # restored from its last checkpoint: ends without a new report
            "restored": FakeResult("g", [report(1, 300.0), report(2, 260.0)], done=False),
            "early": FakeResult("b", [report(1, 400.0)]),
            "nan": FakeResult(
                "c",
                [
                    report(1, 300.0),
                    report(1, float("nan"), sweep_status="diverged", sweep_reason="nan!"),
                ],
            ),
            "error": FakeResult(
                "d", [report(1, 300.0)], error=RuntimeError("trace\nValueError: bad")
            ),
            "cut": FakeResult("e", [report(1, 280.0)], done=False),
            "pending": FakeResult("f", [], done=False),
        }.items()
    }
    summary = {k: (r.status, r.best, r.best_epoch, r.epochs, r.reason) for k, r in rows.items()}
    assert summary == {
        "done": ("completed", 250.0, 2, 2, ""),
        "restored": ("completed", 260.0, 2, 2, ""),
        "early": ("stopped early", 400.0, 1, 1, "asha stopped it after epoch 1"),
        "nan": ("diverged", 300.0, 1, 1, "nan!"),
        "error": ("failed", 300.0, 1, 1, "ValueError: bad"),
        "cut": ("unfinished", 280.0, 1, 1, "the sweep stopped before this trial ended (--resume)"),
        "pending": (
            "unfinished",
            None,
            None,
            0,
            "the sweep stopped before this trial ended (--resume)",
        ),
    }
    assert rows["done"].training_seconds == 1.0 and rows["done"].config == {"model.nhid": 3}


def test_trials_on_a_storage_uri_are_found_resumed_and_restarted(tmp_path):
    # Ray Tune accepts cloud URIs for trial storage; a file:// URI goes
    # through the same pyarrow file-system layer as s3:// or gs://.
    pytest.importorskip("pyarrow", reason="comes with the sweep extra (ray[tune])")
    from pylearn_vae.sweep.runner import MARKER, SweepError, _experiment_path, _prepare_out_dir

    spec = load_spec(
        write_sweep(tmp_path, "epochs: 2\ntrials: 1\nsearch_space:\n  model.nhid: [2, 3]\n")
    )
    experiment = _experiment_path(f"file://{tmp_path / 'storage'}")
    out = tmp_path / "out"
    with pytest.raises(SweepError, match="there is no sweep to resume"):
        _prepare_out_dir(spec, out, experiment, resume=True, restart=False)
    _prepare_out_dir(spec, out, experiment, resume=False, restart=False)
    trials = tmp_path / "storage" / experiment.rsplit("/", 1)[1]
    assert (trials / MARKER).is_file()  # made by the sweep: --restart may delete it
    _prepare_out_dir(spec, out, experiment, resume=False, restart=False)  # (only the marker)
    (trials / "trial_0").write_text("a trial")
    _prepare_out_dir(spec, out, experiment, resume=True, restart=False)  # found: may resume
    with pytest.raises(SweepError, match="holds a sweep already"):
        _prepare_out_dir(spec, out, experiment, resume=False, restart=False)
    _prepare_out_dir(spec, out, experiment, resume=False, restart=True)
    assert sorted(p.name for p in trials.iterdir()) == [MARKER]  # the trials went


@pytest.mark.ray  # (Ray Tune reads its own saved state)
@pytest.mark.network
def test_an_unreadable_saved_state_is_named_on_resume(tmp_path):
    pytest.importorskip("pyarrow", reason="comes with the sweep extra (ray[tune])")
    from pylearn_vae.sweep.runner import SweepError, _recover_deleted_checkpoints

    trials = tmp_path / "trials"
    trials.mkdir()
    (trials / "experiment_state-2026-12-06_09-00-00.json").write_text('{"trial_data": [["cut')
    with pytest.raises(SweepError, match="cannot read Ray Tune's saved state") as caught:
        _recover_deleted_checkpoints(str(trials))
    assert str(trials) in str(caught.value) and "--restart" in str(caught.value)


@pytest.mark.parametrize("storage", ["folder", "uri"])
def test_restart_deletes_only_a_trials_folder_the_sweep_made(tmp_path, storage):
    from pylearn_vae.sweep.runner import MARKER, SweepError, _experiment_path, _prepare_out_dir

    if storage == "uri":
        pytest.importorskip("pyarrow", reason="comes with the sweep extra (ray[tune])")
    spec = load_spec(
        write_sweep(tmp_path, "epochs: 2\ntrials: 1\nsearch_space:\n  model.nhid: [2, 3]\n")
    )
    out = tmp_path / "out"
    where = f"file://{out}" if storage == "uri" else str(out)
    experiment = _experiment_path(where)
    trials = out / "trials"
    trials.mkdir(parents=True)
    (trials / "thesis.tex").write_text("years of work")  # not the sweep's
    with pytest.raises(SweepError, match=rf"was not made by sweep\.py \(it holds no {MARKER}"):
        _prepare_out_dir(spec, out, experiment, resume=False, restart=True)
    assert (trials / "thesis.tex").read_text() == "years of work"
    # A marker that is a link to a file elsewhere does not count either.
    (tmp_path / "elsewhere").write_text("x")
    (trials / MARKER).symlink_to(tmp_path / "elsewhere")
    if storage == "folder":
        with pytest.raises(SweepError, match="was not made by sweep.py"):
            _prepare_out_dir(spec, out, experiment, resume=False, restart=True)
        assert (trials / "thesis.tex").exists()
    # A trials folder that is itself a link is never followed.
    (trials / MARKER).unlink()
    moved = tmp_path / "moved"
    trials.rename(moved)
    (moved / MARKER).write_text("planted")
    trials.symlink_to(moved)
    if storage == "folder":
        with pytest.raises(SweepError, match="was not made by sweep.py"):
            _prepare_out_dir(spec, out, experiment, resume=False, restart=True)
        assert (moved / "thesis.tex").exists()
    # The folder a sweep made is deleted by --restart and made again.
    trials.unlink()
    _prepare_out_dir(spec, out, experiment, resume=False, restart=False)
    (trials / "trial_0").mkdir()
    _prepare_out_dir(spec, out, experiment, resume=False, restart=True)
    assert sorted(p.name for p in trials.iterdir()) == [MARKER]


def test_sweep_outputs_replace_planted_links_without_following_them(tmp_path):
    from pylearn_vae.sweep.runner import TrialRow, _Manifest, write_results

    spec = load_spec(
        write_sweep(tmp_path, "epochs: 2\ntrials: 1\nsearch_space:\n  model.nhid: [2, 3]\n")
    )
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("do not overwrite")
    names = ("results.csv", "results.json", "best.yaml", "sweep.json")
    for name in names:
        (out / name).symlink_to(victim)
    row = TrialRow("t0", {"model.nhid": 3}, "completed", -90.5, 2, 2)
    files = write_results([row], out, spec, make_plan(spec))
    _Manifest(out).write(spec)
    assert set(files) == {"csv", "json", "best_yaml"}
    assert victim.read_text() == "do not overwrite"
    for name in names:
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 0
    assert "t0,3,-90.5,2,2,completed" in (out / "results.csv").read_text()
    os.mkfifo(out / "fifo")
    (out / "results.csv").unlink()
    os.rename(out / "fifo", out / "results.csv")
    with pytest.raises(Exception, match="it is a FIFO"):
        write_results([row], out, spec, make_plan(spec))


def _spec_error(tmp_path, body: str) -> str:
    with pytest.raises(SweepSpecError) as caught:
        load_spec(write_sweep(tmp_path, body))
    return str(caught.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("epochs: 1e400\n", r"epochs must be an integer, got '1e400'"),
        ("epochs: " + "9" * 5000 + "\n", r"epochs must be an integer, got '9{40}'\.\.\. \(5,000"),
        ("epochs: 2\nreduction_factor: 1e400\n", r"reduction_factor must be a number, got"),
        ("epochs: 10000000\n", r"epochs must be an integer from 1 to 1,000,000, got 10000000"),
        ("epochs: 2\ntrials: 1000000\n", r"trials must be an integer from 1 to 100,000"),
        ("epochs: 2\ncpus_per_trial: 100000\n", r"cpus_per_trial must be an integer from 1"),
        ("epochs: 2\n[a]: 1\n", r"line \d+, column 1: a key must be a name, got a list"),
    ],
)
def test_top_level_numbers_and_keys_are_bounded_and_located(tmp_path, body, message):
    text = f"search_space:\n  model.nhid: [2, 3]\n{body}"
    assert re.search(message, _spec_error(tmp_path, text))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("uniform(0, 1e400)", r"uniform\(\) takes 2 numbers, got 0, inf"),
        ("range(100000000)", r"range\(100000000\) has 100,000,000 values, more than the 10,000"),
        ("range(10**30)", r"cannot read the arguments of range"),
        ("range(" + "1" * 40 + ")", r"has more than 2\*\*63 values, more than"),
        ("randint(0, " + "9" * 5000 + ")", r"arguments of randint\(0, 9+\.\.\. \(5,003 char"),
        ("choice(" + "(" * 5000 + ")", r"cannot read the arguments of choice"),
    ],
)
def test_search_space_values_are_bounded_in_time_and_memory(tmp_path, value, message):
    import time

    start = time.perf_counter()
    error = _spec_error(tmp_path, f"epochs: 2\nsearch_space:\n  model.nhid: {value}\n")
    assert time.perf_counter() - start < 2
    assert re.search(message, error), error
    assert len(error) < 400


def test_grid_points_times_trials_are_bounded(tmp_path):
    error = _spec_error(
        tmp_path,
        "epochs: 2\ntrials: 100\nsearch_space:\n"
        "  model.nhid: range(1000)\n  model.seed: range(2)\n",
    )
    assert "the sweep would run 200,000 trials (grid points times trials)" in error


def test_deep_block_nesting_is_a_located_error(tmp_path):
    deep = "".join(" " * i + f"k{i}:\n" for i in range(600)) + " " * 600 + "x: 1\n"
    error = _spec_error(tmp_path, "epochs: 2\nsearch_space:\n  a: 1\nz:\n" + deep)
    assert "nested" in error and "levels deep" in error


@pytest.mark.parametrize("kind", ["fifo", "device", "huge"])
def test_a_sweep_file_or_base_that_is_not_a_small_regular_file_is_refused_at_once(tmp_path, kind):
    folder = tmp_path / kind
    folder.mkdir()
    sweep = write_sweep(folder, "epochs: 2\nsearch_space:\n  model.nhid: [2]\n")
    base = folder / "base.yaml"
    base.unlink()
    if kind == "fifo":
        os.mkfifo(base)
        expected = "is a FIFO (named pipe); give the path of a regular file"
    elif kind == "device":
        base.symlink_to("/dev/zero")
        expected = "is a device; give the path of a regular file"
    else:
        with base.open("wb") as handle:
            handle.truncate((16 << 20) + 1)  # (sparse)
        expected = "is larger than 16,777,216 bytes"
    with pytest.raises(
        SweepSpecError,
        match=rf"line 1, column 1: cannot read the base YAML \S+ {re.escape(expected)}",
    ):
        load_spec(sweep)
    base.unlink()
    os.rename(sweep, base)
    os.mkfifo(sweep)
    with pytest.raises(SweepSpecError, match="cannot read the sweep file .* is a FIFO"):
        load_spec(sweep)


def test_a_trial_needing_more_cpus_than_the_cluster_has_is_refused():
    from pylearn_vae.sweep.runner import SweepError, _check_cpus
    from pylearn_vae.sweep.spec import SweepSpec

    spec = SweepSpec(
        path=REPO / "s.yaml",
        text="",
        base=REPO,
        base_text="",
        epochs=1,
        dimensions=(),
        cpus_per_trial=3,
        where={"cpus_per_trial": "s.yaml, line 4, column 1"},
    )
    _check_cpus(spec, 4.0)
    with pytest.raises(
        SweepError,
        match=r"s\.yaml, line 4, column 1: cpus_per_trial is 3, but "
        r"the Ray cluster has 2 CPU\(s\), so no trial could start",
    ):
        _check_cpus(spec, 2.0)


def test_one_sweep_at_a_time_per_output_folder(tmp_path):
    from pylearn_vae.sweep.runner import SweepError, run_sweep
    from pylearn_vae.utils import locks

    spec = load_spec(write_sweep(tmp_path, "epochs: 1\nsearch_space:\n  model.nhid: [2, 3]\n"))
    out = tmp_path / "out"
    out.mkdir()
    with locks.hold([out / "sweep.json"]):  # (as a running sweep holds it)
        with pytest.raises(SweepError, match=r"sweep\.json is being written by another run"):
            run_sweep(spec, out)
    assert sorted(p.name for p in out.iterdir()) == [".sweep.json.lock"]  # nothing else


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, r"cannot be read \((RecursionError|ValueError)"),
        (b"[1, 2]", r"is not the record of a sweep"),
        (b"\xff", r"cannot be read \(ModelFileError: .* is not UTF-8 text"),
        (None, r"cannot be read \(ModelFileError: .* is a FIFO"),
    ],
    ids=["100,000 deep", "a list", "not UTF-8", "a FIFO"],
)
def test_a_damaged_sweep_record_is_named_on_resume(tmp_path, record, message):
    from pylearn_vae.sweep.runner import _Manifest

    spec = load_spec(write_sweep(tmp_path, "epochs: 1\nsearch_space:\n  model.nhid: [2, 3]\n"))
    manifest = _Manifest(tmp_path)
    if record is None:
        os.mkfifo(manifest.path)
    else:
        manifest.path.write_bytes(record)
    (problem,) = manifest.differences(spec)
    assert re.search(message, problem), problem


def test_a_trial_keeps_the_thread_count_of_its_cpus_whatever_the_driver_has():
    """A trial's training job takes its CPUs' count and measures nothing, even
    where the driver's environment fixes another count or asks to measure."""
    for driver in ({"PYLEARN_VAE_THREADS": "8"}, {"PYLEARN_VAE_THREADS": "auto"}, {}):
        for cpus in (1, 3):
            env = {**driver, **worker_env(cpus)}
            assert fixed_count(env) == cpus
            assert env["OPENBLAS_NUM_THREADS"] == env["PYLEARN_VAE_THREADS"] == str(cpus)
