"""How many BLAS threads a training job's step runs with, chosen by measuring.

OpenBLAS splits each matrix product into one part per thread and waits for
all of them. When another process holds one of the cores, the part of the
thread without a core waits for it: on 2 cores with one competing
CPU-bound process the seed model's step took 4.6 s an epoch with two
threads and 2.3 s with one (docs/performance.md). On a quiet machine two
threads are the faster. Which count wins depends on the machine and on
what else runs on it, so a training job measures instead of assuming:

- before its first epoch, and again every :data:`REMEASURE_EVERY` epochs,
  it times the step at each candidate count (every usable CPU, then halved
  down to one), interleaved, on one minibatch, undoing what the trial steps
  changed (:meth:`SGD.trial_steps
  <pylearn_vae.training_algorithms.sgd.SGD.trial_steps>`), and keeps the
  fastest on average;
- when an epoch's steps take much longer or shorter than those of the
  first epoch after the measurement (:data:`DRIFT` times), it measures
  again before the next epoch.

The count changes the rounding of the products (OpenBLAS adds in another
order), so a run's numbers depend on it. The count in force is saved in
checkpoints and a resumed run continues with it; ``PYLEARN_VAE_THREADS=N``
(or ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``)
fixes it, and then nothing is measured: a run whose numbers must repeat
bit for bit on a machine under changing load sets it.

The threads are set through threadpoolctl, the public way to size the BLAS
thread pools a process has loaded.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

__all__ = [
    "ENV_VARIABLE",
    "PINNING_VARIABLES",
    "DRIFT",
    "REMEASURE_EVERY",
    "fixed_count",
    "candidates",
    "set_blas_threads",
    "ThreadChooser",
]

#: ``auto`` (the default) or a number of threads from 1 to :data:`MAX_THREADS`.
ENV_VARIABLE = "PYLEARN_VAE_THREADS"

#: The most threads a count may be (checkpoints refuse more).
MAX_THREADS = 1 << 12
#: Variables that fix the BLAS libraries' thread count when they load.
PINNING_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: An epoch whose seconds per step differ by this factor (either way) from
#: those of the first epoch after a measurement has the count measured again.
DRIFT = 1.5
#: Epochs between two measurements when nothing drifted (a load that ends
#: makes no step slower, so only a new measurement finds it).
REMEASURE_EVERY = 10


def fixed_count(environ=os.environ) -> int | None:
    """The thread count the user fixed, or None if the job is to choose.

    ``PYLEARN_VAE_THREADS=N`` gives N; one of :data:`PINNING_VARIABLES`
    gives its value (the libraries already read it). A value that is not a
    positive integer is an error (the programs check it at start,
    :mod:`pylearn_vae.cli.environment`).
    """
    value = environ.get(ENV_VARIABLE, "").strip()
    if value and value.lower() != "auto":
        count = _count(value)
        if count is None or count > MAX_THREADS:
            raise ValueError(
                f"{ENV_VARIABLE}={value!r}: give auto or a number of threads from 1 to "
                f"{MAX_THREADS}"
            )
        return count
    for name in PINNING_VARIABLES:
        pinned = _count(environ.get(name, "").strip())
        if pinned is not None:
            return min(pinned, MAX_THREADS)  # (the libraries cap it lower still)
    return None


def _count(text: str) -> int | None:
    """A positive whole number written in at most 8 ASCII digits, or None."""
    if text.isascii() and text.isdigit() and len(text) <= 8 and int(text) > 0:
        return int(text)
    return None


def set_blas_threads(count: int) -> bool:
    """Size every BLAS thread pool this process has loaded to ``count``
    threads; False if threadpoolctl found none (nothing to size)."""
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController().select(user_api="blas")
    if not controller.lib_controllers:
        return False
    controller.limit(limits=int(count))
    return True


def candidates(cpus: int) -> list[int]:
    """The counts a job measures on ``cpus`` CPUs: all of them, then halved down to one."""
    counts, n = [], max(1, int(cpus))
    while n >= 1:
        counts.append(n)
        n //= 2
    return counts


class ThreadChooser:
    """Measures the step at each candidate thread count and keeps the fastest.

    Parameters
    ----------
    counts : list of int
        The candidate counts (:func:`candidates`); with one, that count is
        set before the first epoch and nothing is measured.
    calls, rounds : int
        Each candidate is timed ``rounds`` times for ``calls`` steps, the
        candidates taking turns (after one untimed step at each change).
    """

    def __init__(self, counts, calls: int = 8, rounds: int = 3) -> None:
        self.candidates = [int(n) for n in counts]
        if not self.candidates or min(self.candidates) < 1:
            raise ValueError(f"ThreadChooser: counts must be positive, got {counts!r}")
        self.calls = int(calls)
        self.rounds = int(rounds)
        #: The count in force (None: not chosen yet).
        self.count: int | None = None
        #: Mean seconds per step of each candidate at the last measurement.
        self.seconds: dict[int, float] = {}
        self._stale = True
        self._epochs_since = 0
        self._pace: float | None = None  # seconds per step of the first epoch since
        self._saved: tuple[int, int] | None = None  # (count, epochs since) to resume with

    # -- when to measure --------------------------------------------------------
    def due(self) -> bool:
        """Whether the next epoch should start with a measurement."""
        if self.count is None or self._saved is not None:
            return True
        return len(self.candidates) > 1 and (self._stale or self._epochs_since >= REMEASURE_EVERY)

    def observe(self, seconds_per_step: float) -> None:
        """After an epoch: note its seconds per step. The first epoch after a
        measurement sets the pace (an epoch's steps, on shuffled minibatches
        and with the schedules between them, are slower than the trial
        steps); a later epoch that drifts from it has the count measured
        again before the next epoch."""
        self._epochs_since += 1
        if self.count is None or not seconds_per_step > 0:
            return
        if self._pace is None:
            self._pace = seconds_per_step
            return
        ratio = seconds_per_step / self._pace
        if ratio > DRIFT or ratio < 1 / DRIFT:
            self._stale = True

    # -- measuring ------------------------------------------------------------------
    def choose(self, step: Callable[[], object]) -> int | None:
        """Time ``step`` at each candidate count, set the fastest and return it
        (None, leaving everything as it was, if no BLAS library is loaded)."""
        if self._saved is not None:
            (count, since), self._saved = self._saved, None
            self.adopt(count)
            self._epochs_since = since
            return self.count
        if len(self.candidates) == 1:
            self.adopt(self.candidates[0])
            return self.count
        samples: dict[int, list[float]] = {n: [] for n in self.candidates}
        for _ in range(self.rounds):
            for n in self.candidates:
                if not set_blas_threads(n):
                    return None
                step()  # (the first step after a change wakes or starts threads)
                start = time.perf_counter()
                for _ in range(self.calls):
                    step()
                samples[n].append((time.perf_counter() - start) / self.calls)
        self.seconds = {n: statistics.fmean(s) for n, s in samples.items()}
        best = min(self.candidates, key=lambda n: (self.seconds[n], n))
        self.adopt(best)
        return best

    def adopt(self, count: int) -> None:
        """Use ``count`` threads from now on (a resumed run's saved count)."""
        if not set_blas_threads(count):
            return
        self.count = int(count)
        self._stale = False
        self._epochs_since = 0
        self._pace = None

    # -- checkpoints ----------------------------------------------------------------
    def state_dict(self) -> dict:
        """The count in force and the epochs since it was measured (0 count: none yet)."""
        if self._saved is not None:  # (restored, no epoch since)
            return {"count": self._saved[0], "epochs_since": self._saved[1]}
        return {"count": int(self.count or 0), "epochs_since": int(self._epochs_since)}

    def load_state_dict(self, state: dict) -> None:
        """Continue with a saved count, set (not measured) before the next
        epoch; one this machine cannot give (more threads than its CPUs) is
        measured again. Loading sets nothing in the process."""
        count = int(state.get("count", 0))
        if count in self.candidates:
            self._saved = (count, int(state.get("epochs_since", 0)))

    def describe(self) -> str:
        """One line: the count in force and what was measured."""
        if self.count is None:
            return "BLAS threads: not chosen yet"
        measured = ", ".join(
            f"{n} thread{'s' if n > 1 else ''} {1000 * s:.2f} ms" for n, s in self.seconds.items()
        )
        return f"BLAS threads: {self.count}" + (f" (per step: {measured})" if measured else "")
