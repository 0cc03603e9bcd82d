"""Fetch, verify and install binarized MNIST.

Sources: the public originals (default), another ``http(s)://`` URL, a
``file://`` URL or a plain folder, holding ``binarized_mnist_{split}.amat``
(or ``.amat.gz``). Each split is streamed to a temporary file, parsed,
verified (784 values of 0/1 per line, the expected number of rows, the
known SHA-256) and only then installed as ``binarized_mnist_{split}.npy``
with an atomic rename, so an interrupted or failed run never leaves a partial
file behind.

Hostile or broken sources end in bounded time and space: a split is never
read (or decompressed) beyond the size its rows can take, the whole run has
a deadline (``--deadline``), FIFOs and devices are refused before they are
opened, and a checksum mismatch installs nothing unless
``--allow-checksum-mismatch`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import hashlib
import http.client
import json
import math
import os
import socket
import stat
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from pylearn_vae import __version__
from pylearn_vae.cli.amat import AmatError, parse_amat
from pylearn_vae.cli.common import CLIError, check_path_flag, interrupted, program, say
from pylearn_vae.datasets.binarized_mnist import NUM_PIXELS, SPLIT_ROWS
from pylearn_vae.errors import DownloadError
from pylearn_vae.utils.data_path import DEFAULT_DATA_PATH_HELP, data_path
from pylearn_vae.utils.files import (
    ModelFileError,
    atomic_write,
    read_text_file,
    regular_file_problem,
)
from pylearn_vae.utils.progress import progress_bar

__all__ = ["main", "DEFAULT_SOURCE", "SOURCE_ENV", "KNOWN_SHA256", "DownloadError"]

DEFAULT_SOURCE = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
SOURCE_ENV = "PYLEARN_VAE_MNIST_SOURCE"
SPLITS = ("train", "valid", "test")

#: SHA-256 of each split's uint8 array (C order, rows x 784), from the
#: project's mirror README. Other copies may be ordered differently.
KNOWN_SHA256 = {
    "train": "43490d4d6ac9002727af4426d8748609fdb7e4094fa65ad8d681ea60082a7a5a",
    "valid": "069b4f0beb389b776478c3e872b4df71c95ac4be64d7cbe6d32e24ebac8e6d5e",
    "test": "ca0294c3b8d984c7a1dc891015a8eea6f37bae59a34e35ea0fc8c47110a8dd86",
}

MANIFEST = "manifest.json"


def max_split_bytes(rows: int) -> int:
    """The most bytes a split of ``rows`` rows can take as ``.amat`` text.

    Each row is 784 one-digit values with 783 separators and a line end; one
    more byte per row allows Windows line ends. The public files take exactly
    ``rows * 1568`` bytes.
    """
    return rows * (NUM_PIXELS * 2 + 1)


class _Budget:
    """The size limit of one split and the deadline of the whole run."""

    def __init__(self, limit: int, deadline: float, seconds: float) -> None:
        self.limit = limit
        self.deadline = deadline
        self.seconds = seconds

    def check(self, location: str, done: int) -> None:
        if done > self.limit:
            raise DownloadError(
                f"{location} is larger than the {self.limit:,} bytes this split can take; "
                "refusing to store more (wrong or hostile source)"
            )
        if time.monotonic() > self.deadline:
            raise DownloadError(
                f"fetching {location} did not finish within the {self.seconds:g} s allowed "
                "(--deadline); the source is too slow or stalled"
            )


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _log(message: str, quiet: bool = False) -> None:
    if not quiet:
        say(message, file=sys.stderr, flush=True)


class _Progress:
    """A bar counting bytes on a terminal, then one summary line."""

    def __init__(self, label: str, total: int | None, quiet: bool) -> None:
        self.label = label
        self.total = total
        self.quiet = quiet
        self.start = time.time()
        self.done = 0
        self.bar = progress_bar(
            total, label, unit="B", unit_scale=True, enabled=False if quiet else None
        )

    def update(self, done: int, final: bool = False) -> None:
        self.bar.update(done - self.done)
        self.done = done
        if not final:
            return
        self.bar.close()
        mb = done / 1e6
        text = f"{self.label}: {mb:.1f} MB"
        if self.total:
            text = f"{self.label}: {mb:.1f} / {self.total / 1e6:.1f} MB ({100 * done / self.total:.0f}%)"
        _log(f"{text}, {mb / max(time.time() - self.start, 1e-6):.1f} MB/s", self.quiet)


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(source).scheme in ("http", "https", "file")


def _candidates(source: str, split: str) -> list[str]:
    name = f"binarized_mnist_{split}.amat"
    if _is_url(source):
        base = source if source.endswith("/") else source + "/"
        return [urllib.parse.urljoin(base, name), urllib.parse.urljoin(base, name + ".gz")]
    folder = Path(source).expanduser()
    return [str(folder / name), str(folder / (name + ".gz"))]


def _local_path(location: str) -> Path:
    """The file a ``file://`` URL or a plain path names."""
    parsed = urllib.parse.urlparse(location)
    return (
        Path(urllib.request.url2pathname(parsed.path))
        if parsed.scheme == "file"
        else Path(location)
    )


def _copy(
    read, handle, progress: _Progress, chunk_size: int, budget: _Budget, location: str
) -> int:
    """Copy chunks from ``read`` into ``handle`` with progress; return the byte count.

    Stops with :class:`DownloadError` once more than ``budget.limit`` bytes
    arrived or the deadline passed (checked after every chunk; ``read`` must
    return what is available rather than wait for a full chunk).
    """
    done = 0
    while True:
        budget.check(location, done)
        chunk = read(chunk_size)
        if not chunk:
            break
        handle.write(chunk)
        done += len(chunk)
        progress.update(done)
    budget.check(location, done)
    return done


def check_source_file(path: Path) -> None:
    """Refuse a local source that is missing or not a regular file (FIFO, device, folder)."""
    problem = regular_file_problem(path)
    if problem is not None:
        raise DownloadError(f"{path} {problem}; a source split must be a regular file")


class _TrackedHTTP(urllib.request.HTTPHandler):
    """An HTTP handler that records its connections, so that a watchdog can close them."""

    def __init__(self, connections: list) -> None:
        super().__init__()
        self.connections = connections

    def http_open(self, req):
        def connect(host, **kwargs):
            connection = http.client.HTTPConnection(host, **kwargs)
            self.connections.append(connection)
            return connection

        return self.do_open(connect, req)


class _TrackedHTTPS(urllib.request.HTTPSHandler):
    """The same for HTTPS."""

    def __init__(self, connections: list) -> None:
        super().__init__()
        self.connections = connections

    def https_open(self, req):
        def connect(host, **kwargs):
            connection = http.client.HTTPSConnection(host, **kwargs)
            self.connections.append(connection)
            return connection

        return self.do_open(connect, req, context=self._context)


def _open_before_deadline(location: str, timeout: float, budget: _Budget):
    """``urlopen(location)``, abandoned when the run's deadline passes.

    The socket timeout bounds each read, not the response's header lines: a
    server sending one byte of them every few seconds would otherwise hold
    the download for as long as it likes. A watchdog closes the connection
    at the deadline, and the failure is reported as the deadline.
    """
    connections: list = []
    opener = urllib.request.build_opener(_TrackedHTTP(connections), _TrackedHTTPS(connections))

    def abort() -> None:
        for connection in connections:
            sock = getattr(connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(max(0.0, budget.deadline - time.monotonic()), abort)
    watchdog.daemon = True
    watchdog.start()
    try:
        return opener.open(location, timeout=timeout)
    except (urllib.error.URLError, http.client.HTTPException, OSError):
        budget.check(location, 0)  # raises if the deadline passed
        raise
    finally:
        watchdog.cancel()


def _open_http(location: str, timeout: float, budget: _Budget):
    """The response of ``location`` (an http(s) URL); failures become :class:`DownloadError`."""
    try:
        return _open_before_deadline(location, timeout, budget)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{location} answered HTTP {exc.code} {exc.reason}") from None
    except http.client.HTTPException as exc:
        raise DownloadError(
            f"{location} sent a malformed HTTP response ({type(exc).__name__})"
        ) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"could not reach {urllib.parse.urlparse(location).netloc} ({reason}). Without "
            f"internet access, point --source (or {SOURCE_ENV}) at a mirror: a folder or URL "
            "holding binarized_mnist_{train,valid,test}.amat"
        ) from None


def _fetch_http(
    location: str, handle, progress_label: str, quiet: bool, timeout: float, budget: _Budget
) -> None:
    """Download the http(s) URL ``location`` into the open binary ``handle``."""
    response = _open_http(location, timeout, budget)
    total = response.headers.get("Content-Length", "")
    # (ASCII digits only: "²".isdigit() is true, and int() refuses it.)
    total = int(total) if total.isascii() and total.isdigit() and len(total) < 20 else None
    if total is not None and total > budget.limit:
        response.close()
        raise DownloadError(
            f"{location} announces {total:,} bytes, more than the {budget.limit:,} this "
            "split can take; refusing to download it"
        )
    progress = _Progress(progress_label, total, quiet)
    done = 0
    try:
        with response:
            # read1 returns what has arrived, so a trickling server meets the deadline.
            done = _copy(response.read1, handle, progress, 1 << 20, budget, location)
    except (http.client.HTTPException, ValueError, ConnectionError, TimeoutError, OSError) as exc:
        # (HTTPException: a cut body or an over-long line; ValueError: a chunk
        # size that is not hexadecimal, which http.client lets through.)
        raise DownloadError(
            f"the download of {location} was cut off after {done} bytes"
            + (f" of {total}" if total else "")
            + f" ({type(exc).__name__})"
        ) from None
    if total is not None and done != total:
        raise DownloadError(f"the download of {location} was cut off after {done} of {total} bytes")
    progress.update(done, final=True)


def _fetch_file(location: str, handle, progress_label: str, quiet: bool, budget: _Budget) -> None:
    """Copy the local file ``location`` (a path or ``file://`` URL) into ``handle``."""
    path = _local_path(location)
    check_source_file(path)
    size = path.stat().st_size
    if size > budget.limit:
        raise DownloadError(
            f"{path} holds {size:,} bytes, more than the {budget.limit:,} this split can take"
        )
    try:
        with open(path, "rb") as source:
            progress = _Progress(progress_label, size, quiet)
            done = _copy(source.read, handle, progress, 1 << 22, budget, str(path))
            progress.update(done, final=True)
    except OSError as exc:
        raise DownloadError(f"cannot read {path}: {exc.strerror}") from None


def _fetch_to(
    location: str, handle, progress_label: str, quiet: bool, timeout: float, budget: _Budget
) -> None:
    """Copy ``location`` (URL or path) into the open binary ``handle``."""
    if urllib.parse.urlparse(location).scheme in ("http", "https"):
        _fetch_http(location, handle, progress_label, quiet, timeout, budget)
    else:
        _fetch_file(location, handle, progress_label, quiet, budget)


def _exists(location: str) -> bool | None:
    """Whether a local candidate exists (None for remote: unknown)."""
    if urllib.parse.urlparse(location).scheme in ("http", "https"):
        return None
    return os.path.lexists(_local_path(location))


def _gunzip(data: bytes, limit: int, split: str, location: str) -> bytes:
    """Decompress one gzip member, refusing output beyond ``limit`` bytes (a "gzip bomb")."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise DownloadError(f"{split}: {location} is not a valid gzip file ({exc})") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise DownloadError(
            f"{split}: {location} expands to more than the {limit:,} bytes this split can take; "
            "refusing to decompress it further"
        )
    if not inflater.eof:
        raise DownloadError(f"{split}: {location} is a truncated gzip file")
    if inflater.unused_data:
        raise DownloadError(f"{split}: {location} has data after its gzip stream")
    return out


def _download_split(
    source: str, split: str, workdir: Path, quiet: bool, timeout: float, budget: _Budget
) -> tuple[bytes, str]:
    """Return the decompressed text of ``split`` and where it came from."""
    plain, gz = _candidates(source, split)
    first_error = None
    for location in (plain, gz):
        exists = _exists(location)
        if exists is False:
            continue
        tmp = workdir / (Path(urllib.parse.urlparse(location).path).name + ".part")
        try:
            with open(tmp, "wb") as handle:
                _fetch_to(location, handle, f"{split}: {location}", quiet, timeout, budget)
        except DownloadError as exc:
            if "HTTP 404" in str(exc):
                if location == plain:
                    first_error = exc  # try the .gz next
                    continue
                if first_error is not None:
                    raise DownloadError(f"{first_error}, and so did {gz}") from None
            raise
        data = tmp.read_bytes()
        tmp.unlink()
        if location.endswith(".gz"):
            data = _gunzip(data, budget.limit, split, location)
        return data, location
    if first_error is not None:
        raise DownloadError(f"{first_error}; {gz} was not found either")
    raise DownloadError(f"{split}: neither {plain} nor {gz} exists")


def _installed_ok(target: Path, rows: int) -> bool:
    try:
        if not stat.S_ISREG(os.stat(target).st_mode):
            return False  # a FIFO or device there is replaced, never read
        array = np.load(target, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False
    return array.dtype == np.uint8 and array.shape == (rows, NUM_PIXELS)


def _read_manifest(folder: Path) -> dict:
    """The install record, or an empty one if it is missing or unusable (it is rewritten)."""
    try:
        manifest = json.loads(read_text_file(folder / MANIFEST, "the manifest", 1 << 20))
    except (ModelFileError, ValueError, RecursionError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _write_manifest(folder: Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=True).encode()
    atomic_write(folder / MANIFEST, lambda handle: handle.write(text))


def _parse_rows(text: str | None) -> dict[str, int]:
    rows = dict(SPLIT_ROWS)
    if not text:
        return rows
    for item in text.split(","):
        split, _, value = item.partition("=")
        if split not in rows or not (value.isascii() and value.isdigit()) or int(value) < 1:
            raise DownloadError(
                f"--expected-rows: cannot read {item!r}; write e.g. train=100,valid=20,test=20"
            )
        rows[split] = int(value)
    return rows


def _fetch_split(
    source: str, split: str, workdir: Path, rows: int, quiet: bool, timeout: float, budget: _Budget
) -> tuple[np.ndarray, str, float]:
    """Download and parse ``split``: its array, where it came from and the parse time.

    The downloaded text is dropped when this returns, before the array is
    hashed and saved (the text takes twice the array's memory).
    """
    data, location = _download_split(source, split, workdir, quiet, timeout, budget)
    start = time.time()
    array = _parse_split(data, location, split, rows)
    return array, location, time.time() - start


def _manifest_entry(location: str, array: np.ndarray, digest: str, parse_seconds: float) -> dict:
    """What ``manifest.json`` records about one installed split."""
    return {
        "source": location,
        "installed": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "shape": list(array.shape),
        "dtype": "uint8",
        "sha256": digest,
        "parse_seconds": round(parse_seconds, 3),
        "pylearn_vae": __version__,
    }


def install(
    source: str,
    folder: Path,
    splits,
    rows: dict,
    force: bool,
    quiet: bool,
    timeout: float,
    deadline_seconds: float = 1800.0,
    allow_mismatch: bool = False,
) -> int:
    """Install ``splits`` into ``folder``; return the number of checksum mismatches.

    A split whose SHA-256 differs from the known one is refused (nothing is
    installed) unless ``allow_mismatch``; the whole call must finish within
    ``deadline_seconds``.
    """
    deadline = time.monotonic() + deadline_seconds
    _check_writable(folder)
    manifest = _read_manifest(folder)
    mismatches = 0
    for split in splits:
        target = folder / f"binarized_mnist_{split}.npy"
        if not force and _installed_ok(target, rows[split]):
            _log(f"{split}: already installed at {target} (use --force to redo)", quiet)
            continue
        with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as workdir:
            budget = _Budget(max_split_bytes(rows[split]), deadline, deadline_seconds)
            array, location, parse_seconds = _fetch_split(
                source, split, Path(workdir), rows[split], quiet, timeout, budget
            )
            digest = _sha256(array)
            mismatches += not _checksum_accepted(
                split, array, digest, location, allow_mismatch, quiet
            )
            atomic_write(
                target, lambda handle, array=array: np.save(handle, array, allow_pickle=False)
            )
        manifest[split] = _manifest_entry(location, array, digest, parse_seconds)
        _write_manifest(folder, manifest)
        _log(
            f"{split}: installed {array.shape[0]} x {array.shape[1]} at {target} "
            f"(parsed in {parse_seconds:.2f} s)",
            quiet,
        )
    return mismatches


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        raise DownloadError(
            f"cannot write to the data folder {folder}: {exc.strerror}. Choose another with "
            "--data-path or PYLEARN2_DATA_PATH"
        ) from None


def _parse_split(data, location: str, split: str, rows: int) -> np.ndarray:
    try:
        array = parse_amat(data, NUM_PIXELS, split)
    except AmatError as exc:
        raise DownloadError(f"{location}: {exc}") from None
    if array.shape[0] != rows:
        raise DownloadError(
            f"{split}: {location} has {array.shape[0]} rows, expected {rows} "
            "(truncated or wrong file)"
        )
    return array


def _checksum_accepted(split, array, digest, location, allow_mismatch, quiet) -> bool:
    """Whether ``array`` matches the split's known SHA-256 (True when none is
    known for its size); a mismatch is an error unless ``allow_mismatch``."""
    known = KNOWN_SHA256.get(split)
    if array.shape[0] != SPLIT_ROWS[split] or known is None:
        return True
    if digest == known:
        _log(f"{split}: checksum matches the known SHA-256", quiet)
        return True
    if not allow_mismatch:
        raise DownloadError(
            f"{split}: the SHA-256 of {location} is {digest}, not the known {known}; "
            "nothing was installed. If you trust this copy (copies of the public "
            "files may be ordered differently), rerun with --allow-checksum-mismatch"
        )
    say(
        f"warning: {split}: SHA-256 {digest} differs from the known {known}; "
        "installing it anyway (--allow-checksum-mismatch)",
        file=sys.stderr,
    )
    return False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="download_binarized_mnist.py",
        description="Fetch, verify and install the binarized MNIST data set "
        "(Larochelle & Murray) where BinarizedMNIST reads it.",
    )
    parser.add_argument(
        "--source",
        default=None,
        help=f"where the .amat (or .amat.gz) files are: an http(s):// or file:// URL or a folder "
        f"(default: ${SOURCE_ENV} if set, else {DEFAULT_SOURCE})",
    )
    parser.add_argument(
        "--data-path",
        default=None,
        help=f"data root; files go to DATA_PATH/binarized_mnist/ (default: {DEFAULT_DATA_PATH_HELP})",
    )
    parser.add_argument(
        "--splits", default="train,valid,test", help="comma-separated splits (default: all)"
    )
    parser.add_argument(
        "--force", action="store_true", help="redo splits that are already installed"
    )
    parser.add_argument(
        "--expected-rows",
        default=None,
        help="override row counts, e.g. train=100,valid=20 (for tests)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="network timeout in seconds (default 30)"
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="give up if fetching all splits takes longer than this (default 1800)",
    )
    parser.add_argument(
        "--allow-checksum-mismatch",
        action="store_true",
        help="install a full split whose SHA-256 differs from the known one (default: refuse)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only warnings and errors")
    return parser


def _data_root(args) -> Path:
    """The data root: ``--data-path`` or ``PYLEARN2_DATA_PATH``; :class:`CLIError` if unusable."""
    if args.data_path:
        check_path_flag("--data-path", args.data_path)
    try:
        return Path(args.data_path).expanduser() if args.data_path else data_path()
    except (RuntimeError, OSError) as exc:  # (a ~user of no user)
        raise CLIError(f"the data folder cannot be used: {exc}") from None


@program
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    source = args.source or os.environ.get(SOURCE_ENV) or DEFAULT_SOURCE
    try:
        root = _data_root(args)
    except CLIError as exc:
        say(f"error: {exc}", file=sys.stderr)
        return 1
    folder = root / "binarized_mnist"
    try:
        splits = [s.strip() for s in args.splits.split(",") if s.strip()]
        unknown = [s for s in splits if s not in SPLITS]
        if unknown or not splits:
            raise DownloadError(
                f"--splits: unknown split(s) {', '.join(unknown) or '(none given)'}; use train, valid, test"
            )
        rows = _parse_rows(args.expected_rows)
        for flag, value in (("--timeout", args.timeout), ("--deadline", args.deadline)):
            if not 0 < value < math.inf:
                raise DownloadError(f"{flag} must be a positive number of seconds, got {value}")
        if not _is_url(source) and not Path(source).expanduser().is_dir():
            raise DownloadError(f"--source {source!r} is neither a URL nor an existing folder")
        _log(f"installing binarized MNIST from {source} into {folder}", args.quiet)
        mismatches = install(
            source,
            folder,
            splits,
            rows,
            args.force,
            args.quiet,
            args.timeout,
            deadline_seconds=args.deadline,
            allow_mismatch=args.allow_checksum_mismatch,
        )
    except (DownloadError, ModelFileError) as exc:
        say(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        return interrupted(exc, "; nothing partial was installed")
    if mismatches:
        _log(
            f"done; {mismatches} split(s) differ from the known checksums and were installed "
            "only because of --allow-checksum-mismatch",
            args.quiet,
        )
    else:
        _log("done", args.quiet)
    return 0
