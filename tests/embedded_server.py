"""Stopping an embedded PostgreSQL a test started (through pgserver, as flx does), so none is left running."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# flx's own stop: it never starts the server (pgserver's `get_server(...).cleanup()` would start a stopped
# one again to clean it up, and could leave it running).
_STOP = (
    "import sys; from pathlib import Path; from flx_core.embedded import stop_server;"
    " stop_server(Path(sys.argv[1]))"
)


def stop_embedded(pgdata: Path) -> None:
    """Stop the server of `pgdata` if one runs there (in a process of its own: pgserver keeps state)."""
    if (pgdata / "postmaster.pid").exists():
        subprocess.run([sys.executable, "-c", _STOP, str(pgdata)], check=False, timeout=60)
