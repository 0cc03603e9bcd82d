"""The training step's BLAS threads, chosen by measuring (:mod:`pylearn_vae.speedups.threads`).

The chooser is checked with a step whose speed depends on the thread count
it is given (so that the choice, the re-measurements and the saved state
are exact), then with the real BLAS pools (threadpoolctl reads back what
was set) and the real training step (the trial steps leave no trace:
a measured run ends bit for bit where a run with the count fixed ends).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from pylearn_vae import speedups
from pylearn_vae.speedups import threads
from pylearn_vae.speedups.threads import DRIFT, REMEASURE_EVERY, ThreadChooser, candidates
from pylearn_vae.utils.processes import usable_cpus


class FakeMachine:
    """A step that takes ``seconds[count]`` at the count last set."""

    def __init__(self, seconds: dict[int, float]) -> None:
        self.seconds = seconds
        self.count = None
        self.sets: list[int] = []

    def set(self, count: int) -> bool:
        self.count = count
        self.sets.append(count)
        return True

    def step(self) -> None:
        end = time.perf_counter() + self.seconds[self.count]
        while time.perf_counter() < end:
            pass


@pytest.fixture
def machine(monkeypatch):
    fake = FakeMachine({2: 0.002, 1: 0.0005})
    monkeypatch.setattr(threads, "set_blas_threads", fake.set)
    return fake


def test_candidates_are_every_cpu_then_halved_down_to_one():
    assert candidates(1) == [1]
    assert candidates(2) == [2, 1]
    assert candidates(6) == [6, 3, 1]
    assert candidates(8) == [8, 4, 2, 1]


def test_the_fastest_count_is_chosen_and_set(machine):
    chooser = ThreadChooser([2, 1], calls=3, rounds=2)
    assert chooser.due()
    assert chooser.choose(machine.step) == 1
    assert machine.count == 1 and chooser.count == 1
    assert chooser.seconds[2] > 3 * chooser.seconds[1]
    # the candidates take turns, each round
    assert machine.sets[:4] == [2, 1, 2, 1]
    assert not chooser.due()
    machine.seconds = {2: 0.0005, 1: 0.002}
    assert chooser.choose(machine.step) == 2
    assert "BLAS threads: 2" in chooser.describe()


def test_a_drift_or_ten_epochs_bring_a_new_measurement(machine):
    chooser = ThreadChooser([2, 1], calls=2, rounds=1)
    chooser.choose(machine.step)
    pace = 0.004  # the first epoch after a measurement sets the pace
    chooser.observe(pace)
    chooser.observe(pace * 1.1)
    assert not chooser.due()
    chooser.observe(pace * DRIFT * 1.2)  # a process started competing
    assert chooser.due()
    chooser.choose(machine.step)
    chooser.observe(pace * 2)
    chooser.observe(pace * 2 / (DRIFT * 1.2))  # it ended
    assert chooser.due()
    chooser.choose(machine.step)
    for _ in range(REMEASURE_EVERY - 1):
        chooser.observe(pace)
        assert not chooser.due()
    chooser.observe(pace)
    assert chooser.due()


def test_one_candidate_is_set_without_measuring(machine):
    chooser = ThreadChooser([3])
    assert chooser.due()
    assert chooser.choose(lambda: pytest.fail("a fixed count is not measured")) == 3
    assert machine.sets == [3]
    for _ in range(2 * REMEASURE_EVERY):
        chooser.observe(1.0)
        assert not chooser.due()


def test_the_saved_count_is_continued_and_an_impossible_one_measured(machine):
    chooser = ThreadChooser([2, 1], calls=1, rounds=1)
    chooser.choose(machine.step)
    for _ in range(4):
        chooser.observe(0.004)
    state = chooser.state_dict()
    assert state == {"count": 1, "epochs_since": 4}
    machine.count = None
    resumed = ThreadChooser([2, 1])
    resumed.load_state_dict(state)
    assert machine.count is None  # (loading a checkpoint sets nothing in the process)
    assert resumed.due() and resumed.state_dict() == state
    assert resumed.choose(lambda: pytest.fail("a saved count is not measured again")) == 1
    assert (resumed.count, resumed.due(), machine.count) == (1, False, 1)
    assert resumed.state_dict() == state
    elsewhere = ThreadChooser([1])  # a machine with one CPU
    elsewhere.load_state_dict({"count": 2, "epochs_since": 0})
    assert elsewhere.count is None and elsewhere.due()


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({}, None),
        ({"PYLEARN_VAE_THREADS": "auto"}, None),
        ({"PYLEARN_VAE_THREADS": "3"}, 3),
        ({"OPENBLAS_NUM_THREADS": "1"}, 1),
        ({"PYLEARN_VAE_THREADS": "2", "OMP_NUM_THREADS": "1"}, 2),
    ],
)
def test_the_users_count_stands(environ, expected):
    assert threads.fixed_count(environ) == expected


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "²"])
def test_a_count_that_is_no_positive_integer_is_refused(value):
    with pytest.raises(ValueError, match="PYLEARN_VAE_THREADS"):
        threads.fixed_count({"PYLEARN_VAE_THREADS": value})


def test_the_job_measures_unless_the_user_fixed_the_count(monkeypatch):
    for name in (threads.ENV_VARIABLE, *threads.PINNING_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    previous = speedups.set_enabled(True)
    try:
        assert speedups.thread_chooser().candidates == candidates(usable_cpus())
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
        assert speedups.thread_chooser() is None  # (OpenBLAS read it when it loaded)
        monkeypatch.setenv(threads.ENV_VARIABLE, "1")
        assert speedups.thread_chooser().candidates == [1]
        speedups.set_enabled(False)
        assert speedups.thread_chooser().candidates == [1]
        monkeypatch.delenv(threads.ENV_VARIABLE)
        monkeypatch.delenv("OPENBLAS_NUM_THREADS")
        assert speedups.thread_chooser() is None
    finally:
        speedups.set_enabled(previous)


def test_the_blas_pools_are_sized_for_real():
    """threadpoolctl reads back the count set in every BLAS pool NumPy loaded."""
    from threadpoolctl import threadpool_info

    np.dot(np.ones((4, 4), np.float32), np.ones((4, 4), np.float32))
    before = {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    assert before, "NumPy's BLAS is not seen by threadpoolctl"
    try:
        assert threads.set_blas_threads(1)
        after = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        assert after == [1] * len(after)
    finally:
        from threadpoolctl import ThreadpoolController

        for info in ThreadpoolController().select(user_api="blas").lib_controllers:
            info.set_num_threads(before.get(info.filepath, info.num_threads))
