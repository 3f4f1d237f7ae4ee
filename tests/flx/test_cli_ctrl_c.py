"""Ctrl-C on `flx run JOB 2>&1 | tee out.log`: the terminal signals flx and tee together, so flx's output
pipe breaks while it stops the job. The job's whole tree still ends and the run is recorded `cancelled`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import psutil
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from tests.flx.meltano_project import BIN, make_project

pytestmark = pytest.mark.slow


def _job_processes(root: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cwd"]):
        try:
            if process.info["cwd"] and str(root) in process.info["cwd"]:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_ctrl_c_through_a_pipe_cancels_and_records_it(tmp_path: Path, database_url: URL) -> None:
    project = make_project(
        tmp_path / "project", database_url.render_as_string(hide_password=False), f"cc_{uuid.uuid4().hex[:8]}"
    )
    shell = subprocess.Popen(
        f"{BIN / 'flx'} run hang-job 2>&1 | tee {tmp_path / 'out.log'}",
        shell=True,
        cwd=project.root,
        env=project.env,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        stdout=subprocess.DEVNULL,
    )
    engine = project.engine(database_url)
    deadline = time.monotonic() + 90
    running = f"SELECT count(*) FROM {project.control}.executions WHERE status = 'running'"
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(text(running)).scalar_one():
                break
        time.sleep(0.5)
    time.sleep(3)  # meltano has started the tap and the target
    os.killpg(shell.pid, signal.SIGINT)  # what Ctrl-C does: flx and tee at once
    shell.wait(timeout=60)
    time.sleep(2)
    assert _job_processes(project.root) == [], "the job outlived its runner"
    with engine.connect() as conn:
        status = conn.execute(text(f"SELECT status FROM {project.control}.executions")).scalar_one()
    engine.dispose()
    assert status == "cancelled"
