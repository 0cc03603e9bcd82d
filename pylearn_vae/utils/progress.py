"""Progress bars: the one place the package makes them, with tqdm.

Training, evaluation and the download program show their progress through
:func:`progress_bar`. A bar is drawn on standard error when that is a
terminal (or when asked); otherwise it is a bar that draws nothing, so logs
and pipes get no carriage returns.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

from pylearn_vae.text import escape

__all__ = ["progress_bar"]


def progress_bar(
    total: int | None,
    description: str,
    unit: str = "it",
    enabled: bool | None = None,
    initial: int = 0,
    unit_scale: bool = False,
) -> tqdm:
    """A tqdm bar counting to ``total``, erased when closed.

    ``enabled`` None means: draw it only if standard error is a terminal.
    Redraws at most twice a second, so updating it once per training step
    costs about a microsecond. The description is escaped for the terminal.
    """
    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=escape(description),  # (it may name a file or a server's URL)
        unit=unit,
        unit_scale=unit_scale,
        initial=initial,
        disable=not enabled,
        leave=False,
        file=sys.stderr,
        mininterval=0.5,
        dynamic_ncols=True,
    )
