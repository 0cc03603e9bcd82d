"""Ray Tune callbacks of the sweep tests (a sweep's driver calls them in its process).

This module imports Ray at the top: only tests marked ``ray`` (skipped
without the [sweep] extra) and their driver scripts import it, and
``tests/conftest.py`` keeps ``--doctest-modules`` from importing it.
"""

import os
import shutil
import signal
from pathlib import Path

from ray import tune


class KillAfterFirstCheckpoint(tune.Callback):
    """SIGKILL the worker of the first trial that registers a checkpoint, once."""

    def __init__(self) -> None:
        self.killed = None

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info) -> None:
        if self.killed is None:
            self.killed = trial.trial_id
            os.kill(int(trial.last_result["pid"]), signal.SIGKILL)


class DieBetweenCheckpointAndState(tune.Callback):
    """Kill the driver where Ray Tune can leave a state naming a deleted checkpoint.

    When a trial's second checkpoint arrives, Ray Tune calls this callback,
    then deletes the trial's first checkpoint (it keeps one), then saves its
    experiment state, which until then names the first. This callback does
    that deletion itself and ends the driver at once, as a SIGKILL landing in
    between would.
    """

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info) -> None:
        if trial.last_result.get("epochs_seen") == 2 and not trial.last_result["resumed_from"]:
            shutil.rmtree(Path(checkpoint.path).with_name("checkpoint_000000"))
            os._exit(9)
