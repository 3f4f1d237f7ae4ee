"""The UI's two actions: "run now" starts `flx run` (the same runner as the command line), "cancel" writes a
cancel request that the run's runner acts on, wherever it runs.

Both are off unless `flx ui --actions`, and need the token (see `flx.ui.auth`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Table, select

from flx.config import FlxSettings
from flx.execution.cancel import request_cancel
from flx_core.models import Execution
from flx_core.statuses import ACTIVE


class ActionRefused(Exception):
    """The action cannot be done; the message says why, for the page."""


@dataclass(frozen=True)
class Started:
    process: subprocess.Popen[bytes]  # reaped by its own thread: `returncode` is set once it ends
    output: Path  # the `flx run` process's own output, for when it ends before recording an execution


def run_now(settings: FlxSettings | None, pipeline: str) -> Started:
    """Start `flx run PIPELINE --trigger ui` in the Meltano project, detached from this server."""
    if settings is None or settings.project_root is None:
        raise ActionRefused(
            "run now needs the Meltano project: start flx ui in the project's folder (or set "
            "MELTANO_PROJECT_ROOT)"
        )
    if pipeline not in settings.pipelines and pipeline not in settings.jobs:
        raise ActionRefused(
            f"{pipeline!r} is not a job or pipeline of {settings.project_root / 'meltano.yml'}"
        )
    env = {k: v for k, v in os.environ.items() if k != "FLX_UI_TOKEN"}
    output = Path(tempfile.mkstemp(prefix="flx-ui-run-", suffix=".log")[1])
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "flx.cli.main", "run", pipeline, "--trigger", "ui"],
            cwd=settings.project_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the server does not cancel the run
        )
    threading.Thread(target=process.wait, name=f"flx-ui-run-{process.pid}", daemon=True).start()
    return Started(process, output)


def cancel(conn: Connection, execution_id: uuid.UUID, by: str, schema: str) -> None:
    """Write a cancel request on an active run (as `flx cancel` does, through the same statement)."""
    E = Execution.__table__
    assert isinstance(E, Table)
    status = conn.scalar(select(E.c.status).where(E.c.id == execution_id))
    if status not in ACTIVE:
        raise ActionRefused(f"this run is {str(status).replace('_', ' ')}: there is nothing to cancel")
    requested = request_cancel(conn.connection.driver_connection, schema, execution_id, by)
    conn.commit()
    if requested is None:
        raise ActionRefused("this run ended meanwhile: there is nothing to cancel")
