"""Termination criteria."""

from types import SimpleNamespace

import pytest

from pylearn_vae.monitor import MonitorChannel
from pylearn_vae.termination_criteria import And, EpochCounter, MonitorBased, Or


class FakeMonitor:
    def __init__(self):
        self.epochs = 0
        self.channels = {"valid_objective": MonitorChannel("valid_objective")}

    def get_epochs_seen(self):
        return self.epochs

    def channel_value(self, name):
        return self.channels[name].val_record[-1]


def test_epoch_counter_counts_new_epochs():
    model = SimpleNamespace(monitor=FakeMonitor())
    model.monitor.epochs = 4  # e.g. a model trained before
    crit = EpochCounter(max_epochs=2)
    decisions = []
    for _ in range(4):
        decisions.append(crit.continue_learning(model))
        model.monitor.epochs += 1
    assert decisions == [True, True, False, False]
    with pytest.raises(ValueError, match="non-negative integer"):
        EpochCounter(-1)


def test_monitor_based_stops_after_n_epochs_without_improvement():
    model = SimpleNamespace(monitor=FakeMonitor())
    crit = MonitorBased(prop_decrease=0.1, N=2, channel_name="valid_objective")
    decisions = []
    for value in [10.0, 8.0, 7.9, 7.5, 6.0, 6.0, 6.0]:
        model.monitor.channels["valid_objective"].val_record.append(value)
        decisions.append(crit.continue_learning(model))
    # 8.0 improves on 10 by >10%; 7.9 and 7.5 do not -> stop; 6.0 would have.
    assert decisions[:4] == [True, True, True, False]


def test_and_or_update_every_criterion():
    model = SimpleNamespace(monitor=FakeMonitor())
    a, b = EpochCounter(1), EpochCounter(3)
    assert And([a, b]).continue_learning(model) and Or([a, b]).continue_learning(model)
    model.monitor.epochs = 2
    assert not And([a, b]).continue_learning(model)
    assert Or([a, b]).continue_learning(model)
