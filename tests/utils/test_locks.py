"""One run at a time per output file (``pylearn_vae.utils.locks``): a lock
held by a live process stops the second at once, naming the first; a lock
left by a killed process is free again; lock files that are links or not
regular files are refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pylearn_vae.errors import ModelFileError, OutputInUse
from pylearn_vae.utils import locks
from tests.helpers.paths import REPO


def _start_holder(target):
    """A process that holds ``target``'s lock until killed (once it printed "held")."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(target)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


HOLD = """
import sys, time
from pylearn_vae.utils import locks
with locks.hold([sys.argv[1]]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_holding_twice_in_one_process_is_refused_and_released_on_exit(tmp_path):
    target = tmp_path / "best.h5"
    with locks.hold([target, str(target), None]):  # (duplicates and None skipped)
        with pytest.raises(OutputInUse, match=rf"{target} is being written by another run"):
            with locks.hold([target]):
                pass
    with locks.hold([target]):
        pass
    assert not target.exists() and locks.lock_path(target).is_file()


def test_a_lock_file_that_is_a_link_or_a_fifo_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("untouched")
    locks.lock_path(tmp_path / "a.h5").symlink_to(elsewhere)
    with pytest.raises(ModelFileError, match=r"cannot lock \S+a\.h5: \S+\.a\.h5\.lock cannot"):
        with locks.hold([tmp_path / "a.h5"]):
            pass
    assert elsewhere.read_text() == "untouched"
    os.mkfifo(locks.lock_path(tmp_path / "b.h5"))
    with pytest.raises(ModelFileError, match=r"\.b\.h5\.lock is not a regular file"):
        with locks.hold([tmp_path / "b.h5"]):
            pass


def test_what_a_holder_wrote_is_shown_escaped_and_bounded(tmp_path):
    target = tmp_path / "m.h5"
    with locks.hold([target]):
        fd = os.open(locks.lock_path(target), os.O_RDWR)
        try:
            os.pwrite(fd, b"pid=1\ncommand=\x1b[2Jevil\x07" + b"x" * 5000 + b"\nstarted=now\n", 0)
        finally:
            os.close(fd)
        with pytest.raises(OutputInUse) as caught:
            with locks.hold([target]):
                pass
    message = str(caught.value)
    assert "process 1 (?[2Jevil?xxx" in message and "\x1b" not in message
    assert len(message) < 600


@pytest.mark.subprocess
def test_a_lock_held_by_another_process_names_it_and_is_free_once_it_is_killed(tmp_path):
    target = tmp_path / "run_checkpoint.h5"
    holder = _start_holder(target)
    try:
        with pytest.raises(OutputInUse, match=rf"process {holder.pid} \(-c \S+run_checkpoint"):
            with locks.hold([target]):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        start = time.monotonic()
        with locks.hold([target]):  # no flag needed: the system released it
            pass
        assert time.monotonic() - start < 1
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.subprocess
def test_waiting_for_a_lock_takes_it_when_the_holder_ends(tmp_path):
    target = tmp_path / "trial_checkpoint.h5"
    holder = _start_holder(target)
    try:
        start = time.monotonic()
        with pytest.raises(OutputInUse):
            with locks.hold([target], wait=0.3):
                pass
        assert 0.3 <= time.monotonic() - start < 2
        killer = subprocess.Popen(["sh", "-c", f"sleep 0.5; kill -9 {holder.pid}"])
        with locks.hold([target], wait=30):  # taken once the holder is gone
            assert holder.wait(timeout=5) == -signal.SIGKILL
        killer.wait()
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_file_that_is_a_hard_link_is_refused_and_its_other_name_kept(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    output = tmp_path / "model.h5"
    os.link(precious, locks.lock_path(output))
    with pytest.raises(ModelFileError, match=r"\.model\.h5\.lock is a hard link to another file"):
        with locks.hold([output]):
            pass
    assert precious.read_text() == "keep me\n"
