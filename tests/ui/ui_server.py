"""`flx ui` as a real subprocess for tests, and a small HTTP client for it."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.pipes import closing_pipes

BIN = Path(sys.executable).parent
ADDRESS = re.compile(r"flx ui: http://(?:\[[^\]]+\]|[^:/\s]+):(\d+)/")
START_SECONDS = 90.0


def ui_command() -> list[str]:
    """`flx ui`; `python -m flx.ui` (the same command) while this flx does not list it."""
    from flx.cli.main import main

    if "ui" in main.commands:
        return [str(BIN / "flx"), "ui"]
    return [sys.executable, "-m", "flx.ui"]


@dataclass
class UiServer:
    process: subprocess.Popen[str]
    port: int
    output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self, method: str, path: str, body: str | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        client = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            sent = {"Accept": "text/html", **(headers or {})}
            if body is not None:
                sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
            client.request(method, path, body=body, headers=sent)
            response = client.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
        finally:
            client.close()

    def get(self, path: str, **headers: str) -> tuple[int, str]:
        status, _headers, body = self.request("GET", path, headers=headers)
        return status, body


@contextmanager
def running_ui(cwd: Path, env: Mapping[str, str], *args: str) -> Iterator[UiServer]:
    """Start `flx ui --port 0 ARGS` and wait for the line with its address; stopped (SIGTERM) afterwards."""
    process = closing_pipes(
        subprocess.Popen(
            [*ui_command(), "--port", "0", *args],
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    )
    assert process.stdout is not None
    stdout = process.stdout
    server = UiServer(process, 0)
    started = threading.Event()

    def read() -> None:
        for line in stdout:
            server.output.append(line)
            if not started.is_set() and (found := ADDRESS.search(line)):
                server.port = int(found[1])
                started.set()
        started.set()  # the process ended

    threading.Thread(target=read, daemon=True).start()
    if not started.wait(START_SECONDS) or not server.port:
        process.kill()
        process.wait()
        raise AssertionError(f"flx ui did not start (exit {process.returncode}):\n{''.join(server.output)}")
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
