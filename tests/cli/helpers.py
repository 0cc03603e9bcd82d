"""Objects that test configurations import (with PYTHONPATH set to the repository)."""

import time
from pathlib import Path


class Progress:
    """An SGD update callback that records (epoch, minibatch) and can hold the run at one step.

    With ``pause_at`` set to a count of minibatches, the run stops after that
    minibatch's update: it creates ``<path>.paused`` and waits until
    ``<path>.go`` exists. A test sends its signal while the run is held, so
    where the run is when the signal arrives does not depend on how fast the
    machine is. A stop request (the training program's signal handler sets
    ``algorithm.stop_requested``) also ends the hold. The run is held only
    once per folder (a resumed run passes the same step again and goes on).
    """

    def __init__(self, path: str, delay: float = 0.0, pause_at: int = 0) -> None:
        self.path = path
        self.delay = float(delay)
        self.pause_at = int(pause_at)

    def __call__(self, algorithm) -> None:
        monitor = algorithm.monitor
        with open(self.path, "a") as handle:
            handle.write(f"{monitor.get_epochs_seen() + 1} {monitor.get_batches_seen()}\n")
        if self.delay:
            time.sleep(self.delay)
        if self.pause_at and monitor.get_batches_seen() == self.pause_at:
            self._hold(algorithm)

    def _hold(self, algorithm) -> None:
        paused, go = Path(self.path + ".paused"), Path(self.path + ".go")
        if paused.exists():
            return
        paused.write_text("")
        deadline = time.monotonic() + 600
        while not (go.exists() or algorithm.stop_requested) and time.monotonic() < deadline:
            time.sleep(0.005)
