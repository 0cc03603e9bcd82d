"""The downloader's tests: a loopback HTTP server, synthetic splits, what got installed."""

import http.server
import socket
import threading

import numpy as np


def amat(rows, seed=0) -> tuple[bytes, np.ndarray]:
    """``rows`` random binary digits as the text of an ``.amat`` file, and as an array."""
    data = (np.random.default_rng(seed).random((rows, 784)) < 0.3).astype("uint8")
    text = "\n".join(" ".join("01"[v] for v in row) for row in data) + "\n"
    return text.encode(), data


class Server:
    """A loopback HTTP server serving ``files``; ``drop`` names files cut off mid-way."""

    def __init__(self, files, drop=()):
        outer = self
        self.files, self.drop = files, set(drop)

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                body = outer.files.get(name)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name in outer.drop:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def installed(root) -> list[str]:
    """The ``.npy`` splits installed under data root ``root``."""
    folder = root / "binarized_mnist"
    return sorted(p.name for p in folder.glob("*.npy")) if folder.exists() else []


def leftovers(root) -> list[str]:
    """Hidden (temporary) files the downloader left under data root ``root``."""
    folder = root / "binarized_mnist"
    return [p.name for p in folder.iterdir() if p.name.startswith(".")] if folder.exists() else []
