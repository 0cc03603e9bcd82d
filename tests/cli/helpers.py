"""Objects that test configurations import (with PYTHONPATH set to the repository)."""

import time


class Progress:
    """An SGD update callback that records (epoch, minibatch) and slows each step.

    Tests read the file to send signals at a known point of a run.
    """

    def __init__(self, path: str, delay: float = 0.0) -> None:
        self.path = path
        self.delay = float(delay)

    def __call__(self, algorithm) -> None:
        monitor = algorithm.monitor
        with open(self.path, "a") as handle:
            handle.write(f"{monitor.get_epochs_seen() + 1} {monitor.get_batches_seen()}\n")
        if self.delay:
            time.sleep(self.delay)
