"""A real HTTP endpoint in a thread, collecting the JSON bodies POSTed to it (apprise `json://` target)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Webhook:
    port: int
    received: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The apprise URL for this endpoint."""
        return f"json://127.0.0.1:{self.port}/hook"

    def titles(self) -> list[str]:
        return [str(body.get("title")) for body in self.received]

    def about(self, pipeline: str) -> list[str]:
        """Titles of the alerts for one pipeline: a `flx` start also alerts on other pipelines' dead runs
        (stale-run recovery is global), and tests share one control schema."""
        return [
            str(body.get("title"))
            for body in self.received
            if f"pipeline: {pipeline}\n" in str(body.get("message")) + "\n"
        ]


@contextmanager
def webhook_server() -> Iterator[Webhook]:
    """Serve on a free port until the block ends."""
    hook = Webhook(port=0)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"{}")
            with lock:
                hook.received.append(payload)
                hook.paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    """A port nothing listens on: bound then released (another process could grab it, rarely)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
