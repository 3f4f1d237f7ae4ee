"""A private PostgreSQL cluster that a test may restart at will: never the shared server other tests use.

initdb refuses to run as root, so as root every server command runs as `postgres` (runuser) in a temp
directory it owns. Trust authentication, 127.0.0.1 on a free port, fsync off: it only has to live through
one test module.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")


def available() -> bool:
    return (
        (BIN / "initdb").exists()
        and (BIN / "pg_ctl").exists()
        and (os.geteuid() != 0 or bool(shutil.which("runuser")))
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = _free_port()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = list(argv)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            log = (self.root / "server.log").read_text() if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stdout}{done.stderr}\n{log[-2000:]}")
        return done

    def pg_ctl(self, *args: str) -> None:
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), *args)

    def init(self) -> None:
        self._run(str(BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self.pg_ctl("-o", options, "-w", "-t", "60", "start")

    def restart(self, mode: str) -> None:
        """`pg_ctl restart -m fast|immediate`: every session ends, the server is back when this returns."""
        self.pg_ctl("-m", mode, "-w", "-t", "60", "restart")

    def stop(self) -> None:
        self.pg_ctl("-m", "immediate", "-w", "stop")


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="flx-cluster-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(root)
    try:
        cluster.init()
        yield cluster
    finally:
        with suppress(RuntimeError):
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
