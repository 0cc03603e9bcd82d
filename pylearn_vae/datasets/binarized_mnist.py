"""Statically binarized MNIST (Larochelle & Murray, 2011)."""

from __future__ import annotations

import os
import stat

import numpy as np

from pylearn_vae.datasets.dense_design_matrix import DenseDesignMatrix
from pylearn_vae.errors import DataMissingError
from pylearn_vae.utils.data_path import data_path
from pylearn_vae.utils.rng import make_np_rng

__all__ = ["BinarizedMNIST", "SPLIT_ROWS", "split_file"]

#: Number of rows of each split of the standard data set.
SPLIT_ROWS = {"train": 50000, "valid": 10000, "test": 10000}
NUM_PIXELS = 784


def split_file(which_set: str, root=None):
    """Path of the ``.npy`` file holding ``which_set``."""
    root = data_path() if root is None else root
    return root / "binarized_mnist" / f"binarized_mnist_{which_set}.npy"


#: How to replace a damaged split file.
REINSTALL = "reinstall it with python scripts/download_binarized_mnist.py --force"


def _read_split(path, which_set: str) -> np.ndarray:
    """The installed split at ``path``, memory-mapped, once its file is checked."""
    if not path.exists():
        raise DataMissingError(
            f"binarized MNIST split {which_set!r} is not installed: {path} does not exist. "
            "Fetch it with:  python scripts/download_binarized_mnist.py  "
            "(offline: add --source DIR_OR_URL of a mirror; set PYLEARN2_DATA_PATH to "
            "use another data folder)"
        )
    if not stat.S_ISREG(os.stat(path).st_mode):
        # np.load would wait for ever on a FIFO and read a device without end.
        raise ValueError(f"{path} is not a regular file (a FIFO, device or folder); {REINSTALL}")
    try:
        raw = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path} is not a valid .npy file ({exc}); {REINSTALL}") from exc
    if raw.ndim != 2 or raw.shape[1] != NUM_PIXELS:
        raise ValueError(
            f"{path} has shape {raw.shape}, expected (rows, {NUM_PIXELS}); {REINSTALL}"
        )
    if raw.dtype != np.uint8:
        raise ValueError(f"{path} has dtype {raw.dtype}, expected uint8; {REINSTALL}")
    if raw.shape[0] > SPLIT_ROWS[which_set]:
        # (a sparse file can declare millions of rows on a few kB of disk; the
        # split would then cost memory in proportion to what it declares)
        raise ValueError(
            f"{path} has {raw.shape[0]:,} rows, more than the {SPLIT_ROWS[which_set]:,} of "
            f"binarized MNIST's {which_set} split; {REINSTALL}"
        )
    return raw


def _select_rows(raw, which_set: str, shuffle: bool, start, stop):
    """Rows ``start:stop`` of ``raw``, after a fixed shuffle if asked."""
    if shuffle:
        order = make_np_rng(None, default_seed=[1, 2, 3]).permutation(raw.shape[0])
        raw = raw[order]
    if start is None and stop is None:
        return raw
    n = raw.shape[0]
    lo = 0 if start is None else int(start)
    hi = n if stop is None else int(stop)
    if not 0 <= lo < hi <= n:
        raise ValueError(
            f"BinarizedMNIST {which_set!r}: need 0 <= start < stop <= {n}, "
            f"got start={start}, stop={stop}"
        )
    return raw[lo:hi]


class BinarizedMNIST(DenseDesignMatrix):
    """Binarized MNIST, read from ``${PYLEARN2_DATA_PATH}/binarized_mnist/``.

    Parameters
    ----------
    which_set : {'train', 'valid', 'test'}
        The split.
    shuffle : bool
        Shuffle the examples once, with a fixed seed (as Pylearn2 did).
    start, stop : int, optional
        Keep rows ``start:stop`` (after shuffling).
    axes : sequence
        Axes of the topological view (Pylearn2 compatibility).
    """

    def __init__(
        self,
        which_set: str,
        shuffle: bool = False,
        start: int | None = None,
        stop: int | None = None,
        axes=("b", 0, 1, "c"),
        preprocessor=None,
        fit_preprocessor: bool = False,
        fit_test_preprocessor: bool = False,
    ) -> None:
        if which_set not in SPLIT_ROWS:
            raise ValueError(
                f"BinarizedMNIST which_set must be one of {', '.join(map(repr, SPLIT_ROWS))}, got {which_set!r}"
            )
        path = split_file(which_set)
        rows = _select_rows(_read_split(path, which_set), which_set, shuffle, start, stop)
        data = np.asarray(rows)
        if data.max(initial=0) > 1:
            bad = np.argwhere(data > 1)[0]
            raise ValueError(
                f"{path} holds non-binary value {data[tuple(bad)]} at row {bad[0]}, "
                f"column {bad[1]}; {REINSTALL}"
            )
        self.which_set = which_set
        super().__init__(X=data, axes=axes, preprocessor=preprocessor, image_shape=(28, 28))
        self.path = path

    def adjust_for_viewer(self, X) -> np.ndarray:
        """Map pixel values in [0, 1] to a viewer's [-1, 1] (0 black, 1 white)."""
        return np.clip(np.asarray(X) * 2.0 - 1.0, -1.0, 1.0)
