"""``pylearn_vae.utils.testing``: Pylearn2's assertion helpers under their old path."""

import subprocess
import sys

import numpy as np
import pytest

from pylearn_vae.utils import testing


class AlwaysEqual:
    """Equal to everything, yet a distinct object: separates ``==`` from ``is``."""

    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


def test_assert_equal_compares_with_equality_and_reports_both_values():
    testing.assert_equal({"lr": 0.25}, {"lr": 0.25})
    testing.assert_equal(AlwaysEqual(), AlwaysEqual())
    with pytest.raises(AssertionError, match=r"expected 100, got 7"):
        testing.assert_equal(100, 7)
    with pytest.raises(AssertionError, match=r"expected \[1, 2\], got \[2, 1\]"):
        testing.assert_equal([1, 2], [2, 1])


def test_assert_same_object_needs_identity_not_equality():
    rng = np.random.RandomState(0)
    testing.assert_same_object(rng, rng)
    with pytest.raises(AssertionError, match="not the same object"):
        testing.assert_same_object(AlwaysEqual(), AlwaysEqual())
    with pytest.raises(AssertionError, match=r"expected \[\] \(id \d+\), got \[\] \(id \d+\)"):
        testing.assert_same_object([], [])


def test_assert_contains_checks_membership():
    testing.assert_contains(["prior_mu", "prior_log_sigma"], "prior_mu")
    with pytest.raises(AssertionError, match=r"'W' is not in \('b',\)"):
        testing.assert_contains(("b",), "W")


@pytest.mark.subprocess
def test_the_helpers_still_check_under_python_dash_O():
    code = (
        "from pylearn_vae.utils import testing\n"
        "for call in (lambda: testing.assert_equal(1, 2),\n"
        "             lambda: testing.assert_same_object([], []),\n"
        "             lambda: testing.assert_contains([], 1)):\n"
        "    try:\n"
        "        call()\n"
        "    except AssertionError:\n"
        "        continue\n"
        "    raise SystemExit('a helper passed under -O')\n"
    )
    result = subprocess.run(
        [sys.executable, "-O", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr + result.stdout
