"""Stopping an embedded PostgreSQL a test started (through pgserver, as flx does), so none is left running."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_CLEANUP = "import pgserver, sys; pgserver.get_server(sys.argv[1]).cleanup()"


def stop_embedded(pgdata: Path) -> None:
    """Stop the server of `pgdata` if one was made there (in a process of its own: pgserver keeps state)."""
    if (pgdata / "PG_VERSION").exists():
        subprocess.run([sys.executable, "-c", _CLEANUP, str(pgdata)], check=False, timeout=60)
