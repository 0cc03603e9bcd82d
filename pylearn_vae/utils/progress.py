"""Progress bars: the one place the package makes them, with tqdm.

Training, evaluation and the download program show their progress through
:func:`progress_bar`. A bar is drawn on standard error when that is a
terminal (or when asked), and in a Jupyter notebook as tqdm.auto draws it
there (a widget with ipywidgets, text without); otherwise it is a bar that
draws nothing, so logs and pipes get no carriage returns.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

from pylearn_vae.text import escape

__all__ = ["in_jupyter_kernel", "progress_bar"]


def in_jupyter_kernel() -> bool:
    """Whether this code runs in a Jupyter (IPython) kernel; IPython is not imported
    for the question."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)()
    return shell is not None and hasattr(shell, "kernel")


def progress_bar(
    total: int | None,
    description: str,
    unit: str = "it",
    enabled: bool | None = None,
    initial: int = 0,
    unit_scale: bool = False,
) -> tqdm:
    """A tqdm bar counting to ``total``, erased when closed.

    ``enabled`` None means: draw it only if standard error is a terminal or
    the code runs in a Jupyter kernel (there, with ``tqdm.auto``).
    Redraws at most twice a second, so updating it once per training step
    costs about a microsecond. The description is escaped for the terminal.
    """
    if enabled is None and in_jupyter_kernel():
        from tqdm.auto import tqdm as auto_tqdm

        return auto_tqdm(
            total=total,
            desc=escape(description),
            unit=unit,
            unit_scale=unit_scale,
            initial=initial,
            leave=False,
            mininterval=0.5,
        )
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
