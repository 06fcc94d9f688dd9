"""A small file server on 127.0.0.1 for tests, with scripted faults.

It serves files from a folder, honours ``Range: bytes=N-``, and can be told to answer some requests
with an error status or to cut the connection after a number of bytes. It stops itself after
``max_requests`` requests or when the test ends.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Fault:
    """One scripted answer: an HTTP status, or a cut after ``cut_after`` bytes of the body."""

    def __init__(self, status: int | None = None, cut_after: int | None = None):
        self.status, self.cut_after = status, cut_after


class FileServer:
    def __init__(self, root: Path, max_requests: int = 500):
        self.root = Path(root)
        self.faults: dict[str, deque[Fault]] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.max_requests = max_requests
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                server._handle(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # socketserver's 5 drops a burst of new connections (a 1 s SYN retry)

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def add_faults(self, path: str, *faults: Fault) -> None:
        self.faults.setdefault(path.lstrip("/"), deque()).extend(faults)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        self.requests.append((h.path, h.headers.get("Range")))
        if len(self.requests) > self.max_requests:
            h.send_error(429, "test server request budget exhausted")
            return
        rel = h.path.split("?", 1)[0].lstrip("/")
        fault = self.faults.get(rel, deque()).popleft() if self.faults.get(rel) else None
        if fault and fault.status:
            h.send_error(fault.status)
            return
        path = (self.root / rel).resolve()
        if not str(path).startswith(str(self.root.resolve())) or not path.is_file():
            h.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        rng = h.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng[6:].rstrip("-").isdigit():
            start = int(rng[6:].rstrip("-"))
            if start >= len(data):
                h.send_error(416)
                return
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            h.send_response(200)
        body = data[start:]
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Content-Type", "application/octet-stream")
        h.end_headers()
        if fault and fault.cut_after is not None:
            h.wfile.write(body[: fault.cut_after])
            h.wfile.flush()
            h.close_connection = True
            # Abort the socket so the client sees a short read, not a clean end.
            h.connection.shutdown(2)
            return
        h.wfile.write(body)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def serve(root: str | os.PathLike, max_requests: int = 500) -> FileServer:
    return FileServer(Path(root), max_requests)
