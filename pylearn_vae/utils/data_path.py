"""Where data sets live: ``${PYLEARN2_DATA_PATH}``, or a documented default."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_path", "DEFAULT_DATA_PATH_HELP"]

DEFAULT_DATA_PATH_HELP = (
    "PYLEARN2_DATA_PATH if set, else $XDG_DATA_HOME/pylearn_vae "
    "(~/.local/share/pylearn_vae when XDG_DATA_HOME is unset)"
)


def data_path() -> Path:
    """Return the root folder of the data sets.

    ``PYLEARN2_DATA_PATH`` keeps its Pylearn2 name and meaning. When it is
    unset, data go to ``$XDG_DATA_HOME/pylearn_vae`` (by default
    ``~/.local/share/pylearn_vae``), so a new user needs no set-up.
    """
    value = os.environ.get("PYLEARN2_DATA_PATH")
    if value:
        # Pylearn2 allowed a search path; the first entry is where data go.
        return Path(value.split(os.pathsep)[0]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(xdg) / "pylearn_vae"
