"""The package's one progress bar: drawn on a terminal or when asked, silent in
pipes and logs, erased when done."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pylearn_vae.utils.progress import progress_bar


def test_a_bar_asked_for_is_drawn_on_stderr_and_erased(capsys):
    with progress_bar(4, "epoch 3", unit="batch", enabled=True) as bar:
        for _ in range(4):
            bar.update()
    err = capsys.readouterr().err
    assert "epoch 3" in err and "/4 " in err
    last_line = err.rsplit("\r", 2)[-2]
    assert err.endswith("\r") and last_line.strip() == ""  # erased: blanks, back to column 0


@pytest.mark.subprocess
def test_no_bar_in_a_pipe():
    code = (
        "from pylearn_vae.utils.progress import progress_bar\n"
        "with progress_bar(3, 'evaluating') as bar:\n"
        "    bar.update(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stderr == "" and done.stdout == ""


def test_a_bar_can_be_turned_off(capsys):
    with progress_bar(2, "downloading", enabled=False) as bar:
        bar.update(2)
    assert capsys.readouterr().err == ""


def test_outside_a_kernel_the_jupyter_check_says_no_without_importing_ipython():
    from pylearn_vae.utils.progress import in_jupyter_kernel

    had = "IPython" in sys.modules
    assert in_jupyter_kernel() is False
    assert ("IPython" in sys.modules) == had
