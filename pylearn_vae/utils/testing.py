"""Assertion helpers kept under Pylearn2's ``pylearn2.utils.testing`` path.

Tests written against Pylearn2 import ``assert_equal``, ``assert_same_object``
and ``assert_contains`` from here. Each raises ``AssertionError`` with both
values in the message, and none relies on the ``assert`` statement, so they
keep checking under ``python -O``.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

__all__ = ["assert_equal", "assert_same_object", "assert_contains"]


def assert_equal(expected: Any, actual: Any) -> None:
    """Fail unless ``expected == actual``.

    >>> assert_equal([1, 2], [1, 2])
    >>> assert_equal(1, 2)
    Traceback (most recent call last):
    ...
    AssertionError: not equal: expected 1, got 2
    """
    if not expected == actual:
        raise AssertionError(f"not equal: expected {expected!r}, got {actual!r}")


def assert_same_object(expected: Any, actual: Any) -> None:
    """Fail unless ``expected`` and ``actual`` are one object (``is``)."""
    if expected is not actual:
        raise AssertionError(
            f"not the same object: expected {expected!r} (id {id(expected)}), "
            f"got {actual!r} (id {id(actual)})"
        )


def assert_contains(haystack: Container[Any], needle: Any) -> None:
    """Fail unless ``needle in haystack``."""
    if needle not in haystack:
        raise AssertionError(f"{needle!r} is not in {haystack!r}")
