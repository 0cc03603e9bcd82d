"""The error every configuration problem becomes (shared by the YAML parser and the name table)."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """An error in a YAML configuration, located by file, line and column."""

    def __init__(self, message: str, where: str | None = None) -> None:
        self.where = where
        self.detail = message
        super().__init__(f"{where}: {message}" if where else message)
