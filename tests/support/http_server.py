"""A real HTTP file server on 127.0.0.1 with fault injection, for download tests.

Serves byte blobs by path with Range support, and can: cut a response mid-way (once per path),
stall before answering, answer with an HTTP error, or ignore Range. It records every request so
tests can assert what the client actually asked for.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorded:
    path: str
    range: str | None


@dataclass
class FileServer:
    files: dict[str, bytes] = field(default_factory=dict)
    cut_once_after: dict[str, int] = field(default_factory=dict)  # path -> bytes sent before the cut
    stall_s: dict[str, float] = field(default_factory=dict)  # path -> seconds to wait before answering
    status: dict[str, int] = field(default_factory=dict)  # path -> forced HTTP status
    ignore_range: set[str] = field(default_factory=set)
    hold_s: float = 0.0  # stream slowly: sleep between 64 KiB chunks
    requests: list[Recorded] = field(default_factory=list)
    max_active: int = 0
    _active: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def start(self) -> FileServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def hits(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/" + path.lstrip("/")]


def _make_handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            with state._lock:
                state.requests.append(Recorded(self.path, self.headers.get("Range")))
                state._active += 1
                state.max_active = max(state.max_active, state._active)
            try:
                self._serve()
            finally:
                with state._lock:
                    state._active -= 1

        def _serve(self) -> None:
            path = self.path
            if path in state.stall_s:
                time.sleep(state.stall_s[path])
            if path in state.status:
                self._empty(state.status[path])
                return
            body = state.files.get(path)
            if body is None:
                self._empty(404)
                return
            start = 0
            header = self.headers.get("Range")
            if header and path not in state.ignore_range:
                start = int(header.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            payload = body[start:]
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            with state._lock:
                cut = state.cut_once_after.pop(path, None)
            if cut is not None:
                self.wfile.write(payload[:cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # the client sees the transfer cut mid-way
                return
            for i in range(0, len(payload), 65536):
                self.wfile.write(payload[i : i + 65536])
                if state.hold_s:
                    time.sleep(state.hold_s)

        def _empty(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
