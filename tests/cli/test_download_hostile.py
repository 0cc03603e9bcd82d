"""The downloader against hostile sources: poisoned splits, oversized and endless bodies,
gzip bombs, trickling servers, FIFOs and devices. Each ends quickly, installs nothing
and says why."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import json
import os
import socket
import stat
import threading
import time

import numpy as np
import pytest

from pylearn_vae.cli.download_binarized_mnist import main, max_split_bytes
from tests.helpers.downloads import Server, amat, installed, leftovers

ROWS = 4
ARGS = ["--splits", "test", "--expected-rows", f"test={ROWS}", "--timeout", "5"]
NAME = "binarized_mnist_test.amat"


def run(source, root, *extra):
    return main(["--source", str(source), "--data-path", str(root), *ARGS, *extra])


def test_size_limit_is_the_known_row_size():
    assert max_split_bytes(10_000) == 15_690_000  # the public test split takes 15,680,000
    assert len(amat(ROWS)[0]) <= max_split_bytes(ROWS)


def test_poisoned_full_split_is_refused_unless_overridden(tmp_path, capsys):
    source = tmp_path / "source"
    source.mkdir()
    zeros = (" ".join(["0"] * 784) + "\n").encode() * 10_000  # all zeros: right shape, wrong data
    (source / NAME).write_bytes(zeros)
    args = ["--source", str(source), "--data-path", str(tmp_path / "root"), "--splits", "test"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "test: the SHA-256 of" in err and "not the known ca0294c3" in err
    assert "nothing was installed" in err and "--allow-checksum-mismatch" in err
    assert installed(tmp_path / "root") == []
    assert main([*args, "--allow-checksum-mismatch"]) == 0
    err = capsys.readouterr().err
    assert "installing it anyway (--allow-checksum-mismatch)" in err
    assert "1 split(s) differ from the known checksums" in err
    assert installed(tmp_path / "root") == ["binarized_mnist_test.npy"]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "dev-null", "folder"])
def test_fifos_devices_and_folders_are_refused_up_front(tmp_path, capsys, kind):
    source = tmp_path / "source"
    source.mkdir()
    target = source / NAME
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "folder":
        target.mkdir()
    else:
        target.symlink_to("/dev/" + kind.split("-")[1])
    start = time.monotonic()
    assert run(source, tmp_path / "root") == 1
    assert time.monotonic() - start < 10
    words = {
        "fifo": "a FIFO",
        "dev-zero": "a device",
        "dev-null": "a device",
        "folder": "a directory",
    }
    assert f"{target} is {words[kind]}" in capsys.readouterr().err
    assert installed(tmp_path / "root") == [] and leftovers(tmp_path / "root") == []


def test_file_url_of_a_device_is_refused(tmp_path, capsys):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / NAME).symlink_to("/dev/zero")
    assert run(f"file://{folder}/", tmp_path / "root") == 1
    assert "is a device" in capsys.readouterr().err


def test_oversized_local_file_is_refused_before_reading(tmp_path, capsys):
    source = tmp_path / "source"
    source.mkdir()
    (source / NAME).write_bytes(amat(ROWS)[0] + b" " * max_split_bytes(ROWS))
    assert run(source, tmp_path / "root") == 1
    assert f"more than the {max_split_bytes(ROWS):,} this split can take" in capsys.readouterr().err


def test_gzip_bomb_is_refused(tmp_path, capsys):
    source = tmp_path / "source"
    source.mkdir()
    bomb = gzip.compress(b"0 " * (64 << 20))  # 128 MiB of text in about 130 kB
    assert len(bomb) < max_split_bytes(100)
    (source / (NAME + ".gz")).write_bytes(bomb)
    assert run(source, tmp_path / "root", "--expected-rows", "test=100") == 1
    assert "expands to more than the 156,900 bytes this split can take" in capsys.readouterr().err
    assert installed(tmp_path / "root") == []


@pytest.mark.network
def test_announced_oversize_is_refused(tmp_path, capsys):
    body = amat(ROWS)[0] * 3
    with Server({NAME: body}) as server:
        assert run(server.url, tmp_path / "root") == 1
    assert f"announces {len(body):,} bytes, more than the 6,276" in capsys.readouterr().err


class _Streaming:
    """A server that sends ``chunk`` every ``delay`` seconds without end (no Content-Length)."""

    def __init__(self, chunk: bytes, delay: float) -> None:
        outer = self
        self.sent = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.end_headers()
                try:
                    for _ in range(100_000):
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        outer.sent += len(chunk)
                        time.sleep(delay)
                except OSError:
                    return

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.network
def test_endless_body_stops_at_the_size_limit(tmp_path, capsys):
    server = _Streaming(b"0 " * 4096, 0.0)
    try:
        start = time.monotonic()
        assert run(server.url, tmp_path / "root") == 1
        assert time.monotonic() - start < 20
    finally:
        server.close()
    assert "is larger than the 6,276 bytes this split can take" in capsys.readouterr().err
    assert installed(tmp_path / "root") == [] and leftovers(tmp_path / "root") == []


def _assert_stopped_by_the_deadline(server, root, capsys) -> None:
    """A 2 s ``--deadline`` against ``server`` ends the run in time, installing nothing."""
    try:
        start = time.monotonic()
        assert run(server.url, root, "--deadline", "2") == 1
        elapsed = time.monotonic() - start
    finally:
        server.close()
    assert elapsed < 6, elapsed
    assert "did not finish within the 2 s allowed (--deadline)" in capsys.readouterr().err
    assert installed(root) == [] and leftovers(root) == []


@pytest.mark.network
def test_trickling_server_meets_the_deadline(tmp_path, capsys):
    _assert_stopped_by_the_deadline(_Streaming(b"0", 0.5), tmp_path / "root", capsys)


class _TricklingHeaders:
    """A raw server whose response headers never end: one byte every ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/data/"
        self.delay = delay
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            connection, _ = self.listener.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"HTTP/1.0 200 OK\r\nX-Slow: ")
                for _ in range(10_000):
                    if self.stop.wait(self.delay):
                        return
                    connection.sendall(b"a")

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.mark.network
def test_headers_trickled_one_byte_at_a_time_meet_the_deadline(tmp_path, capsys):
    """Each byte comes well within the socket timeout (5 s), so only the
    deadline can end it."""
    _assert_stopped_by_the_deadline(_TricklingHeaders(0.3), tmp_path / "root", capsys)


def _source_and_data_folder(tmp_path):
    """A local source holding the test split, and the (empty) data folder: (source, folder, data)."""
    source = tmp_path / "source"
    source.mkdir()
    text, data = amat(ROWS)
    (source / NAME).write_bytes(text)
    folder = tmp_path / "root" / "binarized_mnist"
    folder.mkdir(parents=True)
    return source, folder, data


def test_an_installed_fifo_is_neither_read_nor_replaced(tmp_path, capsys):
    source, folder, data = _source_and_data_folder(tmp_path)
    os.mkfifo(folder / "binarized_mnist_test.npy")
    assert run(source, tmp_path / "root") == 1  # (reading it would block for ever)
    err = capsys.readouterr().err
    assert "binarized_mnist_test.npy: it is a FIFO (named pipe), not a regular file" in err, err
    assert stat.S_ISFIFO(os.lstat(folder / "binarized_mnist_test.npy").st_mode)
    os.unlink(folder / "binarized_mnist_test.npy")
    assert run(source, tmp_path / "root") == 0
    assert np.array_equal(np.load(folder / "binarized_mnist_test.npy"), data)


class _RawAnswer:
    """A loopback server answering every request with the bytes ``answer`` (then closing)."""

    def __init__(self, answer: bytes) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/data/"
        self.answer = answer
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.listener.accept()
                with connection:
                    connection.recv(65536)
                    connection.sendall(self.answer)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.listener.close()


@pytest.mark.network
@pytest.mark.parametrize(
    ("head", "body", "expected"),
    [
        # A length in superscript digits ("²".isdigit() is true; int() refuses it) is ignored.
        (b"Content-Length: \xc2\xb2\r\n", None, None),
        (b"Transfer-Encoding: chunked\r\n", b"1" * 100_000 + b"\r\n", "was cut off after 0 bytes"),
        (b"Transfer-Encoding: chunked\r\n", b"zz\r\nab\r\n0\r\n\r\n", "was cut off after 0 bytes"),
        (b"Content-Length: 99999999999999999999999999\r\n", None, None),
    ],
)
def test_odd_http_framing_is_a_one_line_error_or_ignored(tmp_path, capsys, head, body, expected):
    text, data = amat(ROWS)
    answer = b"HTTP/1.1 200 OK\r\n" + head + b"Connection: close\r\n\r\n" + (body or text)
    with _RawAnswer(answer) as server:
        code = run(server.url, tmp_path / "root")
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if expected is None:
        assert code == 0, err
        folder = tmp_path / "root" / "binarized_mnist"
        assert np.array_equal(np.load(folder / "binarized_mnist_test.npy"), data)
    else:
        assert code == 1 and err.splitlines()[-1].startswith("error: ") and expected in err, err


@pytest.mark.parametrize(
    "manifest",
    [b"[1, 2]", b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe", b"fifo"],
    ids=["a list", "100,000 deep", "not UTF-8", "a FIFO"],
)
def test_an_unusable_install_record_is_rewritten(tmp_path, manifest):
    source, folder, _ = _source_and_data_folder(tmp_path)
    if manifest == b"fifo":
        os.mkfifo(folder / "manifest.json")
        assert run(source, tmp_path / "root") == 1  # (the writer refuses to replace it)
        return
    (folder / "manifest.json").write_bytes(manifest)
    assert run(source, tmp_path / "root") == 0
    record = json.loads((folder / "manifest.json").read_text())
    assert set(record) == {"test"}


def test_row_counts_must_be_ascii_digits(tmp_path, capsys):
    code = main(
        [
            "--source",
            str(tmp_path),
            "--data-path",
            str(tmp_path / "r"),
            "--splits",
            "test",
            "--expected-rows",
            "test=\u00b2",
        ]
    )
    assert code == 1 and "Traceback" not in capsys.readouterr().err
