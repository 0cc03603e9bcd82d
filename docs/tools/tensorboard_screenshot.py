"""Take a picture of TensorBoard's Scalars page for a run (the README's picture).

Starts ``tensorboard --logdir LOGDIR`` on 127.0.0.1 and a port the system
picks, waits until it serves the scalars whose tags match ``--tags``, opens
the Scalars page filtered to those tags (smoothing off) in a headless
Chromium (Qt WebEngine, offscreen), waits until each of their charts has
drawn its line, saves the window as a PNG with a reduced palette (small
enough to commit), and stops the server and its data server.

Neither Qt nor Pillow is a dependency of the project: install them in a
throwaway environment (``playwright install`` needs a download that package
registries do not serve; Qt WebEngine ships its Chromium in a wheel)::

    python3 -m venv /tmp/shot
    /tmp/shot/bin/pip install "PyQt6==6.11.*" "PyQt6-WebEngine==6.11.*" pillow

TensorBoard is the program given with ``--tensorboard`` (e.g. the project's
venv's), else that environment's, else the first on ``PATH``. The README's
picture is a real run of the seed document's YAML for 30 epochs (the copy
keeps its model files out of ``yaml/``; the data come from
``scripts/download_binarized_mnist.py``)::

    mkdir -p /tmp/vae_mnist && cp yaml/vae_mnist.yaml /tmp/vae_mnist/
    python scripts/train.py /tmp/vae_mnist/vae_mnist.yaml --epochs 30 \\
        --tensorboard /tmp/vae_mnist/tensorboard
    /tmp/shot/bin/python docs/tools/tensorboard_screenshot.py /tmp/vae_mnist/tensorboard \\
        docs/images/tensorboard_scalars.png --tensorboard .venv/bin/tensorboard

(Chromium runs with ``--no-sandbox``: it is given only the local server's page.)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

# Qt reads these when it starts: no display, no GPU, and no sandbox (which
# needs user namespaces that a container running as root may not have).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox --disable-gpu")

from PIL import Image  # noqa: E402  (after the environment Qt reads)
from PyQt6.QtCore import QBuffer, QIODevice, QTimer, QUrl  # noqa: E402
from PyQt6.QtWebEngineWidgets import QWebEngineView  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

#: The line TensorBoard prints once it serves.
SERVING = re.compile(r"TensorBoard \S+ at (http://127\.0\.0\.1:\d+/)")

#: Plain HTTP to 127.0.0.1, whatever proxy the environment names.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

#: JavaScript: how many of the first ``count`` line charts on the page (through
#: the Polymer components' shadow roots, in page order) have drawn a line.
CHARTS_DRAWN = """
(function (count) {
    const charts = [];
    (function walk(node) {
        if (node.nodeType === 1 && node.tagName.toLowerCase() === "vz-line-chart2") {
            charts.push(node);
        }
        if (node.shadowRoot) walk(node.shadowRoot);
        for (const child of node.children || []) walk(child);
    })(document.documentElement);
    function drawn(chart) {
        let found = false;
        (function walk(node) {
            if (found) return;
            if (node.nodeType === 1 && node.tagName.toLowerCase() === "path"
                    && (node.getAttribute("class") || "").split(" ").includes("line")
                    && (node.getAttribute("d") || "").length > 1) {
                found = true;
            }
            if (node.shadowRoot) walk(node.shadowRoot);
            for (const child of node.children || []) walk(child);
        })(chart);
        return found;
    }
    return charts.slice(0, count).filter(drawn).length;
})(%d)
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logdir", type=Path, help="a folder of TensorBoard event files")
    parser.add_argument("output", type=Path, help="the PNG to write")
    parser.add_argument(
        "--tensorboard",
        help="the tensorboard program to run (default: this environment's TensorBoard)",
    )
    parser.add_argument(
        "--tags",
        default="^(train|valid)_objective$",
        help="regular expression of the tags to show (default: %(default)s)",
    )
    parser.add_argument("--size", default="1280x480", help="window WIDTHxHEIGHT in pixels")
    parser.add_argument("--colors", type=int, default=96, help="palette size of the PNG")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait in all")
    return parser.parse_args(argv)


def tensorboard_command(program: str | None) -> list[str]:
    if program:
        return [program]
    if importlib.util.find_spec("tensorboard") is not None:
        return [sys.executable, "-m", "tensorboard.main"]
    found = shutil.which("tensorboard")
    if found is None:
        raise SystemExit("error: no TensorBoard here; give one with --tensorboard PROGRAM")
    return [found]


@contextlib.contextmanager
def tensorboard_server(command: list[str], logdir: Path, deadline: float) -> Iterator[str]:
    """Run TensorBoard on ``logdir``; yield its base URL once it answers. Stops
    its process group (the server and its data server) on exit."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [*command, "--logdir", str(logdir), "--host", "127.0.0.1", "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield wait_until_serving(process, log, deadline)
        finally:
            stop(process)


def wait_until_serving(process: subprocess.Popen, log, deadline: float) -> str:
    while time.monotonic() < deadline:
        log.seek(0)
        output = log.read().decode("utf-8", "replace")
        if process.poll() is not None:
            raise SystemExit(f"error: tensorboard exited with {process.returncode}:\n{output}")
        found = SERVING.search(output)
        if found:
            with contextlib.suppress(OSError):
                get_json(found.group(1) + "data/runs")
                return found.group(1)
        time.sleep(0.2)
    raise SystemExit("error: tensorboard did not answer in time")


def stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def get_json(url: str):
    with OPENER.open(url, timeout=10) as response:
        return json.load(response)


def loaded_tags(url: str, pattern: str, deadline: float) -> list[str]:
    """The tags matching ``pattern`` once the server has loaded them: the same
    tags with the same numbers of points twice in a row, a second apart."""
    before = None
    while time.monotonic() < deadline:
        points = {}
        for run, tags in get_json(url + "data/plugin/scalars/tags").items():
            for tag in tags:
                if re.search(pattern, tag):
                    query = urllib.parse.urlencode({"run": run, "tag": tag})
                    served = get_json(f"{url}data/plugin/scalars/scalars?{query}")
                    points[run, tag] = len(served)
        if points and points == before:
            return sorted({tag for _run, tag in points})
        before = points
        time.sleep(1.0)
    raise SystemExit(f"error: no scalars matching {pattern!r} were served in time")


def capture(page: str, size: tuple[int, int], charts: int, deadline: float):
    """Load ``page`` in a headless browser window of ``size``; the window's
    picture (a ``QImage``) once its first ``charts`` line charts have drawn."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    view = QWebEngineView()
    view.resize(*size)
    result = {}
    drawn_before = [False]

    def poll() -> None:
        if time.monotonic() > deadline:
            app.quit()
            return
        view.page().runJavaScript(CHARTS_DRAWN % charts, checked)

    def checked(count) -> None:
        # drawn at two polls in a row: the charts' transitions are over
        if count == charts and drawn_before[0]:
            result["image"] = view.grab().toImage()
            app.quit()
            return
        drawn_before[0] = count == charts
        QTimer.singleShot(500, poll)

    view.loadFinished.connect(lambda ok: QTimer.singleShot(500, poll))
    view.load(QUrl(page))
    view.show()
    app.exec()
    if "image" not in result:
        raise SystemExit(f"error: the charts of {page} were not drawn in time")
    return result["image"]


def save_png(image, path: Path, colors: int) -> int:
    """Write the ``QImage`` as a palette PNG; its size in bytes."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    picture = Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGB")
    picture = picture.quantize(colors=colors, dither=Image.Dither.NONE)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, optimize=True)
    return path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    width, height = (int(n) for n in args.size.lower().split("x"))
    deadline = time.monotonic() + args.timeout
    command = tensorboard_command(args.tensorboard)
    with tensorboard_server(command, args.logdir, deadline) as url:
        tags = loaded_tags(url, args.tags, deadline)
        fragment = urllib.parse.urlencode({"tagFilter": args.tags, "_smoothingWeight": 0})
        image = capture(f"{url}#scalars&{fragment}", (width, height), len(tags), deadline)
    size = save_png(image, args.output, args.colors)
    print(f"{args.output}: {image.width()}x{image.height()}, {size // 1024} KiB, tags {tags}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
