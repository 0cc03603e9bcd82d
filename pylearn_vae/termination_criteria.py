"""When to stop training."""

from __future__ import annotations

from pylearn_vae.utils.state import Stateful

__all__ = ["TerminationCriterion", "EpochCounter", "MonitorBased", "And", "Or"]


class TerminationCriterion(Stateful):
    """Base class: ``continue_learning(model)`` says whether to train another epoch."""

    def continue_learning(self, model) -> bool:
        raise NotImplementedError(f"{type(self).__name__} does not implement continue_learning")


class EpochCounter(TerminationCriterion):
    """Stop after ``max_epochs`` epochs.

    With ``new_epochs`` true, epochs are counted from when training starts
    (so a resumed model trains ``max_epochs`` more); otherwise in total.
    """

    _state_attributes = ("_offset",)

    def __init__(self, max_epochs: int, new_epochs: bool = True) -> None:
        if isinstance(max_epochs, bool) or int(max_epochs) != max_epochs or max_epochs < 0:
            raise ValueError(
                f"EpochCounter: max_epochs must be a non-negative integer, got {max_epochs!r}"
            )
        self.max_epochs = int(max_epochs)
        self.new_epochs = bool(new_epochs)
        self._offset = None

    def continue_learning(self, model) -> bool:
        seen = model.monitor.get_epochs_seen()
        if self._offset is None:
            self._offset = seen if self.new_epochs else 0
        return seen - self._offset < self.max_epochs


class MonitorBased(TerminationCriterion):
    """Stop when ``channel_name`` has not improved by ``prop_decrease`` for ``N`` epochs.

    The channel improves when it falls below ``(1 - prop_decrease)`` times
    the best value seen so far.
    """

    _state_attributes = ("countdown", "best_value")

    def __init__(
        self, prop_decrease: float = 0.01, N: int = 5, channel_name: str | None = None
    ) -> None:
        if not 0.0 <= float(prop_decrease) < 1.0:
            raise ValueError(f"MonitorBased: prop_decrease must be in [0, 1), got {prop_decrease}")
        if int(N) < 1:
            raise ValueError(f"MonitorBased: N must be >= 1, got {N}")
        self.prop_decrease = float(prop_decrease)
        self.N = int(N)
        self.channel_name = channel_name
        self.countdown = self.N
        self.best_value = float("inf")

    def continue_learning(self, model) -> bool:
        monitor = model.monitor
        name = self.channel_name
        if name is None:
            if len(monitor.channels) != 1 and "objective" not in monitor.channels:
                raise ValueError(
                    "MonitorBased: give channel_name; the monitor has several channels: "
                    + ", ".join(sorted(monitor.channels))
                )
            name = "objective" if "objective" in monitor.channels else next(iter(monitor.channels))
        value = monitor.channel_value(name)
        if value < (1.0 - self.prop_decrease) * self.best_value:
            self.countdown = self.N
        else:
            self.countdown -= 1
        self.best_value = min(self.best_value, value)
        return self.countdown > 0


class And(TerminationCriterion):
    """Continue only while every criterion says continue."""

    _state_attributes = ("criteria",)

    def __init__(self, criteria) -> None:
        self.criteria = list(criteria)

    def continue_learning(self, model) -> bool:
        return all([c.continue_learning(model) for c in self.criteria])


class Or(TerminationCriterion):
    """Continue while any criterion says continue."""

    _state_attributes = ("criteria",)

    def __init__(self, criteria) -> None:
        self.criteria = list(criteria)

    def continue_learning(self, model) -> bool:
        return any([c.continue_learning(model) for c in self.criteria])
