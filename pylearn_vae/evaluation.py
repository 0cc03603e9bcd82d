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

import math
import time

import numpy as np

from pylearn_vae.utils.compile import function
from pylearn_vae.utils.progress import progress_bar
from pylearn_vae.utils.rng import reseed, rng_updates

__all__ = ["combine_log_means", "mean_and_stderr", "ImportanceSampler", "chunk_sizes"]


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
        Seeds the noise: the same seed gives the same estimates.
    """

    def __init__(self, model, num_samples: int, sample_chunk: int, seed: int = 0) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.model = model
        self.num_samples = int(num_samples)
        self.chunks = chunk_sizes(self.num_samples, int(sample_chunk))
        self.seed = seed
        self._functions: dict = {}
        X = model.get_input_space().make_theano_batch("X")
        elbo = model.log_likelihood_lower_bound(X, 1)
        self._elbo = function([X], elbo)
        reseed(rng_updates(elbo), [seed, 0])
        self._X = X

    def _function(self, k: int):
        if k not in self._functions:
            out = self.model.log_likelihood_approximation(self._X, k)
            self._functions[k] = function([self._X], out)
            reseed(rng_updates(out), [self.seed, 1, k])
        return self._functions[k]

    def log_likelihood(self, X) -> np.ndarray:
        """Importance-sampling estimate of log p(x) for each row of ``X``."""
        values = [self._function(k)(X) for k in self.chunks]
        return combine_log_means(values, self.chunks)

    def elbo(self, X) -> np.ndarray:
        """Single-sample ELBO for each row of ``X``."""
        return np.asarray(self._elbo(X), dtype=np.float64)

    def evaluate(self, data, batch_size: int, progress: bool | None = None) -> dict:
        """NLL and negative ELBO over ``data`` (rows), with a progress bar
        (``progress`` None: when standard error is a terminal)."""
        n = data.shape[0]
        nll, nelbo = np.empty(n), np.empty(n)
        start = time.time()
        with progress_bar(n, "evaluating", unit="example", enabled=progress) as bar:
            for lo in range(0, n, batch_size):
                # Contiguous rows: a strided batch (a subsample such as
                # data[::50]) makes Numba compile an 'A'-layout version of each
                # function, whose matrix products copy their input and warn.
                batch = np.ascontiguousarray(data[lo : lo + batch_size])
                nll[lo : lo + len(batch)] = -self.log_likelihood(batch)
                nelbo[lo : lo + len(batch)] = -self.elbo(batch)
                bar.update(len(batch))
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
        }
