r"""Measuring a trained VAE: importance-sampling NLL with bounded memory.

The importance-sampling estimate with :math:`K` samples,

.. math::
    \log \hat p_K(\mathbf{x}) = \log \frac1K \sum_{k=1}^K w_k,
    \qquad w_k = \frac{p(\mathbf{x}, \mathbf{z}_k)}{q(\mathbf{z}_k \mid \mathbf{x})},

is computed in chunks of samples: each chunk of :math:`K_c` samples gives
:math:`\log\frac{1}{K_c}\sum w` (``VAE.log_likelihood_approximation``), and
:func:`combine_log_means` merges chunks exactly with log-sum-exp, so memory
depends on the chunk size, not on :math:`K`.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from pylearn_vae import numerics, speedups
from pylearn_vae.compile import function
from pylearn_vae.expr.basic import log_sum_exp
from pylearn_vae.utils import constantX
from pylearn_vae.utils.processes import children_ignore_interrupts, usable_cpus
from pylearn_vae.utils.progress import progress_bar
from pylearn_vae.utils.rng import reseed, rng_updates

__all__ = [
    "combine_log_means",
    "mean_and_stderr",
    "ImportanceSampler",
    "chunk_sizes",
    "evaluate_in_workers",
    "samples_per_call",
    "usable_cpus",
]


def combine_log_means(log_means, counts) -> np.ndarray:
    r"""Merge per-chunk :math:`\log\frac{1}{K_c}\sum w` into :math:`\log\frac1K\sum w`.

    Parameters
    ----------
    log_means : sequence of arrays, one per chunk (same shape)
    counts : sequence of int, the number of samples of each chunk

    >>> combine_log_means([np.log([2.0]), np.log([4.0])], [1, 3]).round(6)  # (2 + 12) / 4
    array([1.252763])
    """
    counts = np.asarray(counts, dtype=np.float64)
    stacked = np.stack([np.asarray(v, dtype=np.float64) for v in log_means])
    weighted = stacked + np.log(counts).reshape((-1,) + (1,) * (stacked.ndim - 1))
    top = weighted.max(axis=0)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.log(np.exp(weighted - top).sum(axis=0)) + top - math.log(counts.sum())


def mean_and_stderr(values) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std with ddof=1, over sqrt(n)).

    >>> mean_and_stderr([1.0, 2.0, 3.0, 4.0])
    (2.5, 0.6454972243679028)
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return float(values.mean()), float("nan")
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


#: Floats in the widest activation of one compiled call: 20,000 rows of 784,
#: the seed model's widest layer. Much more (a convolutional decoder's
#: patches reach a gigabyte at 20,000 rows) and glibc returns each freed
#: array to the system, so every call page-faults it in again: the
#: convolutional model evaluated 1.9x slower, half of it system time.
ACTIVATION_FLOATS_PER_CALL = 20_000 * 784


def widest_activation(model) -> int:
    """Floats per example in the widest input or layer output of ``model``'s
    encoder and decoder MLPs."""
    widths = [int(model.nvis)]
    for component in model.networks():
        for layer in getattr(getattr(component, "mlp", None), "layers", ()):
            widths.append(int(layer.get_output_space().get_total_dimension()))
    return max(widths)


def samples_per_call(model, num_samples: int, batch_size: int) -> int:
    """Importance samples per compiled call for batches of ``batch_size``
    examples: as many as keep each activation within
    :data:`ACTIVATION_FLOATS_PER_CALL` (at least 1, at most ``num_samples``)."""
    rows = ACTIVATION_FLOATS_PER_CALL // widest_activation(model)
    return max(1, min(int(num_samples), rows // int(batch_size)))


def chunk_sizes(total: int, chunk: int) -> list[int]:
    """Split ``total`` into chunks of at most ``chunk``.

    >>> chunk_sizes(10, 4)
    [4, 4, 2]
    """
    if total < 1 or chunk < 1:
        raise ValueError(f"need total >= 1 and chunk >= 1, got {total}, {chunk}")
    return [min(chunk, total - start) for start in range(0, total, chunk)]


class ImportanceSampler:
    """Compiled, chunked importance-sampling and ELBO estimates for a VAE.

    Parameters
    ----------
    model : VAE
    num_samples : int
        :math:`K`, importance samples per example.
    sample_chunk : int
        Samples per compiled call (memory grows with ``examples x sample_chunk``).
    seed : int
        Seeds the noise: the same seed gives the same estimates. In
        :meth:`evaluate` the noise of each batch is derived from the seed and
        the batch's position, so the numbers do not depend on how many
        worker processes computed them.
    """

    def __init__(self, model, num_samples: int, sample_chunk: int, seed: int = 0) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.model = model
        self.num_samples = int(num_samples)
        self.sample_chunk = int(sample_chunk)
        self.chunks = chunk_sizes(self.num_samples, self.sample_chunk)
        self.seed = seed
        self._functions: dict = {}
        self._elbo = None
        self._calls = 0
        self._X = model.get_input_space().make_theano_batch("X")

    def _function(self, k: int):
        """The compiled ``(log mean w, mean log w)`` of ``k`` samples, and its RNGs."""
        if k not in self._functions:
            log_weights = self.model.log_importance_weights(self._X, k)
            outputs = [
                log_sum_exp(log_weights, axis=0) - constantX(math.log(k)),
                log_weights.mean(axis=0),
            ]
            self._functions[k] = (function([self._X], outputs), list(rng_updates(outputs)))
        return self._functions[k]

    def estimates(self, X, batch_index: int) -> tuple[np.ndarray, np.ndarray]:
        """Log-likelihood estimates and ELBO estimates (mean log-weight) for each row of ``X``.

        The noise is drawn afresh from ``(seed, batch_index)``: the same
        batch at the same index gets the same numbers.
        """
        return self._estimates(X, [1, batch_index])

    def _estimates(self, X, stream: list) -> tuple[np.ndarray, np.ndarray]:
        log_means, mean_logs = [], []
        for position, k in enumerate(self.chunks):
            fn, rngs = self._function(k)
            reseed(rngs, [self.seed, *stream, position])
            log_mean, mean_log = fn(X)
            log_means.append(log_mean)
            mean_logs.append(np.asarray(mean_log, dtype=np.float64) * k)
        elbo = np.sum(mean_logs, axis=0) / self.num_samples
        return combine_log_means(log_means, self.chunks), elbo

    def log_likelihood(self, X) -> np.ndarray:
        """Importance-sampling estimate of log p(x) for each row of ``X``
        (fresh noise on every call)."""
        self._calls += 1
        return self._estimates(X, [2, self._calls])[0]

    def elbo(self, X) -> np.ndarray:
        """Single-sample ELBO for each row of ``X`` (the training criterion's form)."""
        if self._elbo is None:
            elbo = self.model.log_likelihood_lower_bound(self._X, 1)
            self._elbo = function([self._X], elbo)
            reseed(rng_updates(elbo), [self.seed, 0])
        return np.asarray(self._elbo(X), dtype=np.float64)

    def evaluate(
        self, data, batch_size: int, progress: bool | None = None, workers: int = 1
    ) -> dict:
        """NLL and negative ELBO (the mean of the K log-weights) over ``data`` (rows).

        ``workers`` > 1 splits the batches over that many processes, each
        with an equal share of the BLAS threads (see :func:`evaluate_in_workers`);
        the numbers are the same as with one. ``progress`` None: a bar when
        standard error is a terminal.
        """
        n = data.shape[0]
        nll, nelbo = np.empty(n), np.empty(n)
        starts = list(range(0, n, batch_size))
        start = time.time()
        with (
            numerics.applied(),
            progress_bar(n, "evaluating", unit="example", enabled=progress) as bar,
        ):
            for lo, (log_likelihood, elbo) in self._batches(data, starts, batch_size, workers):
                nll[lo : lo + len(elbo)] = -log_likelihood
                nelbo[lo : lo + len(elbo)] = -elbo
                bar.update(len(elbo))
        seconds = time.time() - start
        nll_mean, nll_se = mean_and_stderr(nll)
        elbo_mean, elbo_se = mean_and_stderr(nelbo)
        return {
            "nll": nll_mean,
            "nll_stderr": nll_se,
            "negative_elbo": elbo_mean,
            "negative_elbo_stderr": elbo_se,
            "num_examples": int(n),
            "num_samples": self.num_samples,
            "seconds": seconds,
            "workers": int(workers),
        }

    def _batches(self, data, starts, batch_size, workers):
        """``(start row, (log-likelihoods, ELBOs))`` for each batch, in order."""
        # Contiguous rows: a strided batch (a subsample such as data[::50])
        # makes Numba compile an 'A'-layout version of each function, whose
        # matrix products copy their input and warn.
        batches = (
            (index, np.ascontiguousarray(data[lo : lo + batch_size]))
            for index, lo in enumerate(starts)
        )
        if workers <= 1:
            for index, rows in batches:
                yield starts[index], self.estimates(rows, index)
            return
        for index, result in evaluate_in_workers(self, batches, workers):
            yield starts[index], result


# -- worker processes ---------------------------------------------------------
#
# PyTensor's compiled functions hold the GIL, and between its matrix products
# an evaluation runs long single-threaded stretches (drawing the noise, the
# elementwise log-densities). Processes that each run whole batches with their
# share of the BLAS threads keep every core busy.

_WORKER_SAMPLER = None
_BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _environment(values: dict):
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _start_worker(model, num_samples: int, sample_chunk: int, seed: int) -> None:
    global _WORKER_SAMPLER
    # The process only evaluates: the process settings of the evaluation
    # program's own process, and the numerics setting for the worker's whole life.
    speedups.prepare_process()
    numerics.applied().__enter__()
    _WORKER_SAMPLER = ImportanceSampler(model, num_samples, sample_chunk, seed)


def _worker_batch(task):
    index, rows = task
    return index, _WORKER_SAMPLER.estimates(rows, index)


def evaluate_in_workers(sampler: ImportanceSampler, batches, workers: int):
    """Run ``sampler.estimates`` on ``(index, rows)`` batches in ``workers``
    processes; yields ``(index, result)`` in the batches' order.

    The model reaches the workers pickled by :mod:`multiprocessing` (an
    object of this process, not a file); each worker compiles its functions
    (from the cache after the first run) and gets ``usable_cpus() // workers``
    BLAS threads. A worker that dies raises
    :class:`concurrent.futures.process.BrokenProcessPool`; on any error or
    interruption the batches not yet started are cancelled and the workers
    are stopped at once.
    """
    threads = str(max(1, usable_cpus() // workers))
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(sampler.model, sampler.num_samples, sampler.sample_chunk, sampler.seed),
    )
    before = set(multiprocessing.active_children())
    started: list = []
    try:
        # map() submits every batch now, so every worker process starts
        # inside this block and reads its BLAS thread count at start.
        with (
            _environment(dict.fromkeys(_BLAS_THREAD_VARIABLES, threads)),
            children_ignore_interrupts(),
        ):
            results = pool.map(_worker_batch, batches)
        started = [child for child in multiprocessing.active_children() if child not in before]
        yield from results
    except BaseException:
        # Interrupted (a signal, an error): stop the workers now rather than
        # wait for their batches, so that the program ends at once.
        for child in started:
            child.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
