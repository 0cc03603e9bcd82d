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


def test_in_a_log_long_work_writes_a_plain_line_a_minute(capsys, monkeypatch):
    import pylearn_vae.utils.progress as progress

    now = [100.0]
    monkeypatch.setattr(progress, "_clock", lambda: now[0])
    with progress_bar(10_000, "evaluating", unit="example") as bar:
        for seconds in (30, 59, 61, 90, 125):  # since the start, after each batch
            now[0] = 100.0 + seconds
            bar.update(1_000)
    lines = capsys.readouterr().err.splitlines()
    # a line after a minute and the next a minute after that one, no carriage return
    assert lines == [
        "evaluating: 3,000/10,000 examples (30%), 1 min 01 s, about 2 min 22 s left",
        "evaluating: 5,000/10,000 examples (50%), 2 min 05 s, about 2 min 05 s left",
    ]


def test_a_resumed_count_estimates_what_is_left_from_this_run_and_escapes_its_text(
    capsys, monkeypatch
):
    import pylearn_vae.utils.progress as progress

    now = [0.0]
    monkeypatch.setattr(progress, "_clock", lambda: now[0])
    with progress_bar(200, "epoch \x1b[31m7", unit="batch", initial=150) as bar:
        bar.set_postfix(objective="91.250\r")
        now[0] = 3700.0
        bar.update(10)
    (line,) = capsys.readouterr().err.splitlines()
    assert "\x1b" not in line and "\r" not in line
    # 10 batches in 3700 s: 40 left take 4 times as long
    assert line.endswith(
        "160/200 batches (80%), 1 h 01 min, about 4 h 06 min left (objective=91.250\\r)"
    )


@pytest.mark.subprocess
def test_a_program_in_a_pipe_writes_progress_lines_not_a_bar():
    code = (
        "import pylearn_vae.utils.progress as p\n"
        "with p.progress_bar(3, 'evaluating', log_interval=0) as bar:\n"
        "    bar.update(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stderr.startswith("evaluating: 3/3 (100%), 0 s") and "\r" not in done.stderr
