"""The UI's two actions: "run now" starts `flx run` (the same runner as the command line), "cancel" asks a
run's own `flx run` process to stop, as Ctrl-C would.

Both are off unless `flx ui --actions`, and need the token (see `orchestrator.ui.auth`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import FlxSettings

ACTIVE = ("pending", "running", "retrying")


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
            [sys.executable, "-m", "orchestrator.cli", "run", pipeline, "--trigger", "ui"],
            cwd=settings.project_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the server does not cancel the run
        )
    threading.Thread(target=process.wait, name=f"flx-ui-run-{process.pid}", daemon=True).start()
    return Started(process, output)


def cancel(status: str, hostname: str | None, pid: int | None, pipeline: str) -> str:
    """SIGTERM the `flx run` process of an active run on this machine; what was done, for the page."""
    if status not in ACTIVE:
        raise ActionRefused(f"this run is {status.replace('_', ' ')}: there is nothing to cancel")
    here = socket.gethostname()
    if hostname != here or pid is None:
        raise ActionRefused(
            f"this run's flx process is on {hostname or 'an unknown host'}, not on {here}: cancel it there "
            "(flx ui on that machine, or SIGTERM its flx run process)"
        )
    argv = _cmdline(pid)
    if argv is None:
        raise ActionRefused(
            f"its flx process {pid} is not running on {here} (the next flx start records that)"
        )
    if not _is_flx_run(argv, pipeline):
        what = "flx serve or flx worker" if {"serve", "worker"} & set(argv) else "another program"
        raise ActionRefused(
            f"process {pid} on {here} is {what}, not a `flx run {pipeline}`: stopping it would stop "
            "more than this run"
        )
    os.kill(pid, signal.SIGTERM)
    return f"sent SIGTERM to flx run (pid {pid}); the run stops its job and records `cancelled`"


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part] or None


def _is_flx_run(argv: list[str], pipeline: str) -> bool:
    flx = any(Path(part).name == "flx" or part == "orchestrator.cli" for part in argv[:3])
    if not flx or "run" not in argv:
        return False
    rest = argv[argv.index("run") + 1 :]
    return " ".join(a for a in rest if not a.startswith("-")).startswith(pipeline)
