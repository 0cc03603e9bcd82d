"""The package's one writer (``pylearn_vae.utils.files``) against what may
already be at the path: symlinks, FIFOs, sockets, folders, device nodes,
read-only modes, hard links, and a write that fails half-way."""

from __future__ import annotations

import os
import re
import socket
import stat

import pytest

from pylearn_vae.utils.files import (
    ModelFileError,
    atomic_write,
    atomic_write_text,
    check_output_path,
    read_text_file,
)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_new_file_gets_the_umask_mode_and_no_temporary_file_stays(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "new.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "new.json").read_text() == "{}"
    assert stat.S_IMODE(os.stat(tmp_path / "new.json").st_mode) == 0o640
    assert _leftovers(tmp_path) == []


def test_a_replaced_file_keeps_its_permission_bits(tmp_path):
    target = tmp_path / "model.h5"
    target.write_text("old")
    os.chmod(target, 0o600)
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    os.chmod(target, 0o755)
    atomic_write_text(target, "newer")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o755


def test_a_symlink_at_the_target_is_replaced_as_a_link_and_its_target_is_untouched(tmp_path):
    precious = tmp_path / "precious"
    precious.write_text("keep me")
    os.chmod(precious, 0o600)
    link = tmp_path / "results.csv"
    link.symlink_to(precious)
    atomic_write_text(link, "a,b\n")
    assert not link.is_symlink() and link.read_text() == "a,b\n"
    assert precious.read_text() == "keep me"
    assert stat.S_IMODE(os.stat(precious).st_mode) == 0o600
    dangling = tmp_path / "best.yaml"
    dangling.symlink_to(tmp_path / "nowhere" / "x")
    atomic_write_text(dangling, "x: 1\n")
    assert not dangling.is_symlink() and not (tmp_path / "nowhere").exists()


def test_a_hard_linked_file_is_replaced_and_its_other_name_keeps_the_old_bytes(tmp_path):
    original = tmp_path / "original"
    original.write_text("old")
    os.link(original, tmp_path / "out.json")
    atomic_write_text(tmp_path / "out.json", "new")
    assert original.read_text() == "old" and (tmp_path / "out.json").read_text() == "new"


def _make_fifo(path):
    os.mkfifo(path)


def _make_socket(path):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()


def _make_folder(path):
    path.mkdir()
    (path / "inside").write_text("kept")


def _make_device(path):
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # like /dev/null


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (_make_fifo, "a FIFO"),
        (_make_socket, "a socket"),
        (_make_folder, "a directory"),
        (_make_device, "a device"),
    ],
)
def test_anything_but_a_regular_file_or_a_link_is_refused_and_left_alone(tmp_path, make, kind):
    target = tmp_path / "out.json"
    make(target)
    before = os.lstat(target)
    with pytest.raises(ModelFileError, match=rf"cannot save \S+out\.json: it is {kind}"):
        check_output_path(target)
    with pytest.raises(ModelFileError, match=rf"it is {kind}.*, not a regular file"):
        atomic_write_text(target, "{}")
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (
        before.st_mode,
        before.st_ino,
        before.st_rdev,
    )
    assert _leftovers(tmp_path) == []


def test_dev_null_is_refused_before_anything_is_written():
    with pytest.raises(ModelFileError, match=r"/dev/null: it is a device"):
        check_output_path("/dev/null")


def test_something_put_at_the_target_during_the_write_is_not_replaced(tmp_path):
    target = tmp_path / "out.json"

    def write(handle):
        handle.write(b"{}")
        os.mkfifo(target)  # appears while the file is being written

    with pytest.raises(ModelFileError, match="it is a FIFO"):
        atomic_write(target, write)
    assert stat.S_ISFIFO(os.lstat(target).st_mode) and _leftovers(tmp_path) == []


def test_a_write_that_fails_half_way_keeps_the_previous_file(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("previous")

    def write(handle):
        handle.write(b"half")
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError, match="stopped"):
        atomic_write(target, write)
    assert target.read_text() == "previous" and _leftovers(tmp_path) == []


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelFileError, match=r"folder \S+missing does not exist"):
        atomic_write_text(tmp_path / "missing" / "x.json", "{}")
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("folder", r"is a directory; give the path of a regular file"),
        ("fifo", r"is a FIFO \(named pipe\)"),
        ("device", r"is a device"),
        ("missing", r"does not exist"),
        ("large", r"is larger than 64 bytes; refusing to read it"),
        ("latin-1", r"is not UTF-8 text \(byte 3\)"),
    ],
)
def test_read_text_file_refuses_what_is_not_a_small_text_file(tmp_path, kind, message):
    path = tmp_path / "input"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # (opened without blocking: no writer is needed)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "large":
        path.write_text("x" * 65)
    elif kind == "latin-1":
        path.write_bytes("abc\xe9".encode("latin-1"))
    with pytest.raises(ModelFileError, match=rf"the input {re.escape(str(path))} {message}"):
        read_text_file(path, "the input", limit=64)


def test_read_text_file_reads_a_text_file_up_to_its_limit(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("é" * 32)  # 64 bytes
    assert read_text_file(path, "file", limit=64) == "é" * 32
