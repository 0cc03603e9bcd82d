"""A 127.0.0.1 stand-in for an MLflow tracking server that stops answering.

It answers the REST calls a training run makes (``/health``, the
experiment, run creation, ``log-batch``, tags, run updates) just enough for
MLflow's own client, and from the ``stall_from``-th call of one endpoint on
it stalls (``stall_on="health"``: the health check): ``"hang"`` answers nothing; ``"drip"`` sends a valid answer one
byte every half second, so that no read ever times out. The run's artifacts
are uploaded to it (``mlflow-artifacts:``, as ``mlflow server`` serves
them) and dropped, unless ``artifact_uri`` names another place.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EXPERIMENT = {
    "experiment_id": "1",
    "name": "Default",
    "artifact_location": "",
    "lifecycle_stage": "active",
}


class FakeMLflowServer:
    """``with FakeMLflowServer(...) as server:`` serves at ``server.url``;
    ``server.stalled`` is set when the first stalled call arrives."""

    def __init__(
        self,
        stall_on: str = "",
        stall_from: int = 1,
        how: str = "hang",
        artifact_uri: str = "mlflow-artifacts:/1/r1/artifacts",
        run_name: str | None = None,
    ):
        assert how in ("hang", "drip")
        self.artifact_uri = artifact_uri
        self.run_name = run_name
        self.uploads: list[str] = []
        self.stall_on = stall_on
        self.stall_from = stall_from
        self.how = how
        self.calls: list[str] = []
        self.stalled = threading.Event()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def answer(self, endpoint: str, request: dict) -> dict:
        if endpoint == "experiments/get-by-name":
            return {"experiment": EXPERIMENT}
        if endpoint in ("runs/create", "runs/get"):
            info = {
                "run_id": "r1",
                "run_uuid": "r1",
                "experiment_id": "1",
                "run_name": self.run_name or request.get("run_name", "fake"),
                "status": "RUNNING",
                "start_time": request.get("start_time", 0),
                "artifact_uri": self.artifact_uri,
                "lifecycle_stage": "active",
            }
            return {"run": {"info": info, "data": {}}}
        if endpoint == "runs/update":
            return {"run_info": {"run_id": "r1", "status": request.get("status", "")}}
        if endpoint == "runs/search":
            return {"runs": []}
        return {}  # (log-batch, set-tag)

    def _stall(self, handler, body: bytes) -> None:
        self.stalled.set()
        if self.how == "hang":
            self._release.wait()
            return
        body += b" " * 10_000  # (JSON may end in spaces: an answer of over an hour)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for byte in body:
            if self._release.wait(0.5):
                return
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/health":
                    if server.stall_on == "health":
                        server._stall(self, b"OK")
                    else:
                        self._send(200, b"OK")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                endpoint = path.removeprefix("/api/2.0/mlflow/")
                server.calls.append(endpoint)
                body = json.dumps(server.answer(endpoint, request)).encode()
                if (
                    endpoint == server.stall_on
                    and server.calls.count(endpoint) >= server.stall_from
                ):
                    server._stall(self, body)
                    return
                self._send(200, body)

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.uploads.append(self.path)
                self._send(200, b"{}")

            do_GET = do_POST = do_PATCH = _reply

        return Handler


def wait_for(event: threading.Event, proc, seconds: float = 300) -> None:
    """Wait until ``event`` is set, while the process ``proc`` is alive."""
    deadline = time.monotonic() + seconds
    while not event.wait(0.05):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the run never reached the stalled request"
