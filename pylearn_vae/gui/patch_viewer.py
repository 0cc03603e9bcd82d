"""``PatchViewer``: a grid of image patches, shown in a viewer or written as a PNG.

Patches are added one by one (row by row) with values in [-1, 1], -1 drawn
black and 1 white (or rescaled into that range). :meth:`PatchViewer.show`
runs the command in ``PYLEARN2_VIEWER_COMMAND`` on a PNG of the grid, as
Pylearn2 did; on a machine without one (headless) it writes the PNG and
logs where it is.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from pylearn_vae.config.keywords import pylearn2_keywords
from pylearn_vae.utils.image import write_png

__all__ = ["PatchViewer", "VIEWER_COMMAND_VARIABLE"]

logger = logging.getLogger(__name__)

#: Environment variable naming the image viewer command (Pylearn2's name).
VIEWER_COMMAND_VARIABLE = "PYLEARN2_VIEWER_COMMAND"


def _pair(value, what: str) -> tuple[int, int]:
    pair = tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) < 0:
        raise ValueError(f"PatchViewer {what} must be two non-negative integers, got {value!r}")
    return pair


class PatchViewer:
    """A ``rows x cols`` grid of ``patch_shape`` image patches.

    Parameters
    ----------
    grid_shape : pair of int
        Number of patch rows and columns.
    patch_shape : pair of int
        Size (rows, columns) of one patch in pixels.
    is_color : bool
        Whether patches have three (RGB) channels.
    pad : pair of int, optional
        Pixels between patches (and around the grid); default ``(1, 1)``.
    background : float, optional
        Grey level of the padding in [0, 1]; default 0.5.
    """

    def __init__(
        self, grid_shape, patch_shape, is_color: bool = False, pad=None, background=None
    ) -> None:
        self.grid_shape = _pair(grid_shape, "grid_shape")
        self.patch_shape = _pair(patch_shape, "patch_shape")
        if min(self.grid_shape) < 1 or min(self.patch_shape) < 1:
            raise ValueError(
                f"PatchViewer needs a non-empty grid and patches, got grid_shape "
                f"{self.grid_shape} and patch_shape {self.patch_shape}"
            )
        self.is_color = bool(is_color)
        self.pad = _pair((1, 1) if pad is None else pad, "pad")
        self.background = 0.5 if background is None else float(background)
        if not 0.0 <= self.background <= 1.0:
            raise ValueError(f"PatchViewer background must be in [0, 1], got {background!r}")
        (gr, gc), (pr, pc), (dr, dc) = self.grid_shape, self.patch_shape, self.pad
        #: The grid image, values in [0, 1], shape (height, width, 3).
        self.image = np.empty((gr * (pr + dr) + dr, gc * (pc + dc) + dc, 3))
        self.cur_pos = (0, 0)
        self.clear()

    def clear(self) -> None:
        """Empty the grid; the next patch goes to the top-left corner."""
        self.image[...] = self.background
        self.cur_pos = (0, 0)

    @pylearn2_keywords
    def add_patch(
        self,
        patch,
        rescale: bool = True,
        recenter: bool = True,
        activation=None,
        warn_blank_patch: bool = True,
    ) -> None:
        """Draw ``patch`` in the next free cell (row by row).

        Parameters
        ----------
        patch : ndarray
            ``(rows, cols)`` or ``(rows, cols, channels)`` with 1 channel
            (grey) or 3 (colour, needs ``is_color``); at most ``patch_shape``.
        rescale : bool
            Divide by the patch's largest magnitude first. Without it,
            values must already lie in [-1, 1].
        recenter : bool
            Centre a patch smaller than ``patch_shape`` in its cell (else
            it goes to the cell's top-left corner).
        activation : None
            Pylearn2's activation border; not implemented (must be None).
        warn_blank_patch : bool
            Log a warning when a patch is constant (it shows as one flat colour).

        Raises
        ------
        ValueError
            If the grid is full, the patch does not fit, or (without
            ``rescale``) a value lies outside [-1, 1].
        """
        row, col = self.cur_pos
        if row >= self.grid_shape[0]:
            raise ValueError(f"PatchViewer grid of {self.grid_shape} patches is full")
        patch = np.asarray(patch, dtype=np.float64)
        if patch.ndim == 2:
            patch = patch[:, :, None]
        if patch.ndim != 3 or patch.shape[2] not in (1, 3):
            raise ValueError(
                f"a patch must be (rows, cols) or (rows, cols, 1 or 3), got shape {patch.shape}"
            )
        if patch.shape[2] == 3 and not self.is_color:
            raise ValueError("a 3-channel patch needs PatchViewer(is_color=True)")
        if patch.shape[0] > self.patch_shape[0] or patch.shape[1] > self.patch_shape[1]:
            raise ValueError(
                f"a patch of shape {patch.shape[:2]} does not fit patch_shape {self.patch_shape}"
            )
        if warn_blank_patch and patch.size and patch.min() == patch.max():
            logger.warning("PatchViewer: patch %s is constant (%g)", self.cur_pos, patch.min())
        if rescale:
            scale = np.abs(patch).max(initial=0.0)
            if scale > 0:
                patch = patch / scale
        elif np.abs(patch).max(initial=0.0) > 1.0:
            raise ValueError(
                "with rescale=False, patch values must lie in [-1, 1], got "
                f"[{patch.min():g}, {patch.max():g}]; use dataset.adjust_for_viewer first"
            )
        (pr, pc), (dr, dc) = self.patch_shape, self.pad
        top, left = dr + row * (pr + dr), dc + col * (pc + dc)
        if recenter:
            top += (pr - patch.shape[0]) // 2
            left += (pc - patch.shape[1]) // 2
        self.image[top : top + patch.shape[0], left : left + patch.shape[1]] = (patch + 1.0) / 2.0
        col += 1
        if col == self.grid_shape[1]:
            row, col = row + 1, 0
        self.cur_pos = (row, col)

    def get_img(self) -> np.ndarray:
        """The grid as an array in [0, 1]: (height, width, 3), or (height, width) if grey."""
        return self.image.copy() if self.is_color else self.image[:, :, 0].copy()

    def save(self, path) -> Path:
        """Write the grid to ``path`` as a PNG; return the path."""
        path = Path(path)
        write_png(path, self.get_img())
        return path

    def show(self) -> Path:
        """Show the grid: open it in the configured viewer, or write it as a PNG.

        With ``PYLEARN2_VIEWER_COMMAND`` set, that command is run on a
        temporary PNG (in the background). Otherwise (a headless machine)
        the PNG is kept in the temporary folder and a warning logs its path.
        Returns the PNG's path either way.
        """
        fd, name = tempfile.mkstemp(prefix="patch_viewer_", suffix=".png")
        os.close(fd)
        path = self.save(name)
        command = os.environ.get(VIEWER_COMMAND_VARIABLE, "").strip()
        if command:
            subprocess.Popen([*shlex.split(command), str(path)])
            logger.info("PatchViewer: opened %s with %s", path, command)
        else:
            logger.warning(
                "PatchViewer.show: no image viewer configured (%s is unset); wrote %s",
                VIEWER_COMMAND_VARIABLE,
                path,
            )
        return path
