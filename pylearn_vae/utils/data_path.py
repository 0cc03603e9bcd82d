"""Where data sets live: ``${PYLEARN2_DATA_PATH}``, or a documented default."""

from __future__ import annotations

import os
from pathlib import Path

from pylearn_vae.text import escape

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
        first = value.split(os.pathsep)[0]
        try:
            return Path(first).expanduser()
        except RuntimeError as exc:  # (~user of no user)
            from pylearn_vae.errors import DataMissingError

            raise DataMissingError(
                f"PYLEARN2_DATA_PATH={escape(first)} cannot be used ({exc}); set it to a folder"
            ) from None
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(xdg) / "pylearn_vae"
