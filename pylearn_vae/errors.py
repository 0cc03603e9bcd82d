"""Exception types raised by pylearn_vae."""

from __future__ import annotations

__all__ = ["UnsupportedOptionError"]


class UnsupportedOptionError(ValueError):
    """A Pylearn2 keyword argument that pylearn_vae accepts but does not implement.

    ``options`` lists the offending keyword names (YAML errors point at the
    first one's line).
    """

    def __init__(self, message: str, options=()) -> None:
        super().__init__(message)
        self.options = list(options)
