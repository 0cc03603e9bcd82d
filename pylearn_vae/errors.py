"""Exception types raised by pylearn_vae."""

from __future__ import annotations

__all__ = ["UnsupportedOptionError", "check_unsupported"]


class UnsupportedOptionError(ValueError):
    """A Pylearn2 keyword argument that pylearn_vae accepts but does not implement.

    ``options`` lists the offending keyword names (YAML errors point at the
    first one's line).
    """

    def __init__(self, message: str, options=()) -> None:
        super().__init__(message)
        self.options = list(options)


def check_unsupported(owner: str, **options) -> None:
    """Raise :class:`UnsupportedOptionError` for every option not at its default.

    Each keyword maps to ``(value, default)``; a Pylearn2 YAML that sets an
    option we do not implement fails loudly instead of being ignored.
    """
    bad = [name for name, (value, default) in options.items() if value != default]
    if bad:
        raise UnsupportedOptionError(
            f"{owner}: option(s) {', '.join(repr(b) for b in bad)} are accepted for "
            "Pylearn2 compatibility but not implemented by pylearn_vae; remove them "
            "(see docs/differences.md)",
            bad,
        )
