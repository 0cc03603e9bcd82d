"""Progress bars: the one place the package makes them, with tqdm.

Training, evaluation and the download program show their progress through
:func:`progress_bar`. A bar is drawn on standard error when that is a
terminal (or when asked), and in a Jupyter notebook as tqdm.auto draws it
there (a widget with ipywidgets, text without). In a log or a pipe there is
no bar (no carriage returns): work that lasts longer than a minute writes
one plain line a minute instead (done, elapsed, about how long is left).
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from pylearn_vae.text import escape

__all__ = ["in_jupyter_kernel", "progress_bar"]

#: Seconds between two progress lines in a log or a pipe.
LOG_INTERVAL = 60.0
_clock = time.monotonic


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
    log_interval: float | None = None,
):
    """A tqdm bar counting to ``total``, erased when closed.

    ``enabled`` None means: draw it only if standard error is a terminal or
    the code runs in a Jupyter kernel (there, with ``tqdm.auto``); anywhere
    else, write a plain progress line every ``log_interval`` seconds
    (default :data:`LOG_INTERVAL`), so short work writes nothing.
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
    if enabled is None and not sys.stderr.isatty():
        interval = LOG_INTERVAL if log_interval is None else log_interval
        return _ProgressLines(total, description, unit, initial, unit_scale, interval)
    return tqdm(
        total=total,
        desc=escape(description),  # (it may name a file or a server's URL)
        unit=unit,
        unit_scale=unit_scale,
        initial=initial,
        disable=enabled is False,
        leave=False,
        file=sys.stderr,
        mininterval=0.5,
        dynamic_ncols=True,
    )


class _ProgressLines:
    """The bar's stand-in in a log or a pipe: the same ``update``,
    ``set_postfix`` and ``close``; a line on standard error when ``interval``
    seconds have passed since the start or the last line."""

    def __init__(self, total, description, unit, initial, unit_scale, interval) -> None:
        self.total = total
        self.description = escape(description)
        self.unit = _plural(unit)
        self.unit_scale = unit_scale
        self.interval = float(interval)
        self.n = self.initial = int(initial)
        self.postfix = ""
        self.start = self.last = _clock()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = _clock()
        if now - self.last >= self.interval:
            self.last = now
            # (the bar's own stream, written as tqdm writes it: not a print)
            sys.stderr.write(self.line(now - self.start) + "\n")
            sys.stderr.flush()

    def set_postfix(self, refresh: bool = True, **values) -> None:
        self.postfix = ", ".join(f"{key}={escape(value)}" for key, value in values.items())

    def close(self) -> None:
        pass

    def _count(self, n) -> str:
        return tqdm.format_sizeof(n) if self.unit_scale else f"{n:,}"

    def line(self, elapsed: float) -> str:
        """``evaluating: 2,500/10,000 examples (25%), 1 min 10 s, about 3 min 30 s left``."""
        done = self._count(self.n)
        unit = f" {self.unit}" if self.unit else ""
        text = f"{self.description}: {done}{unit}"
        if self.total:
            text = (
                f"{self.description}: {done}/{self._count(self.total)}{unit} "
                f"({100 * self.n / self.total:.0f}%)"
            )
        text += f", {_duration(elapsed)}"
        if self.total and self.n > self.initial:
            left = elapsed * (self.total - self.n) / (self.n - self.initial)
            text += f", about {_duration(left)} left"
        return text + (f" ({self.postfix})" if self.postfix else "")


def _plural(unit: str) -> str:
    """``example`` -> ``examples``, ``batch`` -> ``batches``; ``B`` and plurals
    stay; tqdm's ``it`` (no unit named) is left out."""
    if unit == "it":
        return ""
    if unit == "B" or unit.endswith("s"):
        return unit
    return unit + ("es" if unit.endswith(("ch", "sh", "x")) else "s")


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    seconds = max(int(round(seconds)), 0)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
