"""Each run's complete log in the control schema, `flx logs [--follow]` and `flx cancel` from another shell.

Real `flx run`s of the throwaway Meltano project; the other shell is another process with nothing in common
with the runner but the database.
"""

from __future__ import annotations

import getpass
import re
import socket
import subprocess
import time
import uuid
import zlib
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.flx.meltano_project import MeltanoProject, events, executions

pytestmark = pytest.mark.slow

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@pytest.fixture
def engine(project: MeltanoProject, database_url: URL) -> Iterator[Engine]:
    engine = project.engine(database_url)
    yield engine
    engine.dispose()


def _chunks(
    engine: Engine, project: MeltanoProject, execution_id: uuid.UUID
) -> list[tuple[int, int, int, int, bytes]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT attempt, first_line, line_count, raw_bytes, data "
                f"FROM {project.control}.execution_logs WHERE execution_id = :id ORDER BY first_line"
            ),
            {"id": execution_id},
        ).all()
    return [(a, f, n, r, bytes(d)) for a, f, n, r, d in rows]


def _wait_running(engine: Engine, pipeline: str, timeout: float = 90) -> uuid.UUID:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = executions(engine, pipeline)
        if found and found[-1].status == "running":
            return found[-1].id
        time.sleep(0.3)
    raise AssertionError(f"{pipeline} never started running")


def test_the_complete_log_is_kept_compressed_per_attempt(project: MeltanoProject, engine: Engine) -> None:
    project.configure(pipelines={"flaky-job": {"retries": 1, "retry_delay_seconds": 0}})
    run = project.flx("run", "flaky-job")
    assert run.returncode == 0, run.stdout + run.stderr
    execution = executions(engine, "flaky-job")[-1]

    shown = project.flx("logs", "flaky-job")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    # everything the job printed, in order, between flx's own markers of each attempt
    printed = [_ANSI.sub("", line) for line in run.stdout.splitlines() if "] " in line]
    assert printed and [line for line in lines if line in printed] == printed
    assert lines[0].startswith("flx ▸ flaky-job #1 (manual), attempt 1 of 2 on ")
    assert lines[0].endswith(": meltano run flaky-job")
    assert any("ORA-12541 no listener" in line for line in lines)
    assert "flx ▸ meltano run exited 1 after" in "\n".join(lines)
    assert any(line.startswith("flx ▸ retrying in ") for line in lines)
    assert any(line.startswith("flx ▸ flaky-job #1 (manual), attempt 2 of 2") for line in lines)
    assert lines[-1] == "flx ▸ succeeded after 2 attempt(s)"

    # each attempt merged into one zlib chunk; the chunks cover every line once
    chunks = _chunks(engine, project, execution.id)
    assert [c[0] for c in chunks] == [1, 2]
    assert chunks[0][1] == 0 and chunks[1][1] == chunks[0][2]
    assert sum(c[2] for c in chunks) == len(lines)
    for _attempt, _first, count, raw, data in chunks:
        assert len(zlib.decompress(data).decode().split("\n")) == count and len(data) < raw

    tail = project.flx("logs", f"flaky-job#{execution.execution_number}", "--tail", "2")
    assert tail.stdout.splitlines() == lines[-2:]
    assert f"flx logs flaky-job#{execution.execution_number}" in project.flx("show", str(execution.id)).stdout


def test_follow_and_cancel_from_another_shell(project: MeltanoProject, engine: Engine) -> None:
    runner = project.flx_background("run", "hang-job")
    follower: subprocess.Popen[str] | None = None
    try:
        execution_id = _wait_running(engine, "hang-job")
        follower = project.flx_background("logs", "--follow", str(execution_id)[:8])
        time.sleep(3)
        assert follower.poll() is None, "--follow ended while the run goes on"

        cancel = project.flx("cancel", "hang-job")
        assert cancel.returncode == 0, cancel.stdout + cancel.stderr
        assert re.search(r"hang-job #1: cancelled \([0-9.]+ s after the request\)", cancel.stderr)
        assert runner.wait(timeout=60) == 130
        out, _ = follower.communicate(timeout=30)
        assert follower.returncode == 0
    finally:
        for process in (runner, follower):
            if process is not None and process.poll() is None:
                process.kill()
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    execution = executions(engine, "hang-job")[-1]
    assert execution.status == "cancelled"
    assert execution.error == f"cancelled by {who}; process group stopped"
    cancelled = [
        payload for _seq, kind, payload in events(engine, execution.id) if kind == "cancel_requested"
    ]
    assert [payload["by"] for payload in cancelled] == [who]
    followed = out.splitlines()
    assert followed[0].startswith("flx ▸ hang-job #1 (manual), attempt 1 of 1")
    assert f"flx ▸ cancel requested by {who}; stopping the job" in followed
    assert "flx ▸ cancelled after 1 attempt(s)" in followed
    assert followed[-1] == "hang-job #1: cancelled"  # --follow says how it ended, and stops by itself
    assert project.flx("logs", str(execution_id)).stdout.splitlines() == followed[:-1]

    again = project.flx("cancel", str(execution_id))
    assert again.returncode == 2
    assert again.stderr.strip() == "flx cancel: hang-job #1 is cancelled already: there is nothing to cancel"


def test_unknown_executions_and_runs_without_a_log(project: MeltanoProject, engine: Engine) -> None:
    missing = project.flx("logs", "nosuch")
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "flx logs: no execution matches 'nosuch' (give an id, pipeline#number or a pipeline's name)"
    )
    assert project.flx("run", "ok-job").returncode == 0
    execution = executions(engine, "ok-job")[-1]
    with engine.begin() as conn:  # as a run from before logs were kept
        conn.execute(text(f"DELETE FROM {project.control}.execution_logs"))
    old = project.flx("logs", "ok-job")
    assert old.returncode == 0
    assert old.stderr.startswith("flx logs: no log is stored for ok-job #1 (it ran before flx kept logs")
    assert old.stdout.splitlines() == (execution.log_tail or "").splitlines()


def test_logs_older_than_the_retention_are_deleted(project: MeltanoProject, engine: Engine) -> None:
    project.configure(log_retention_days=7)
    assert project.flx("run", "ok-job").returncode == 0
    first = executions(engine, "ok-job")[-1]
    with engine.begin() as conn:
        conn.execute(
            text(f"UPDATE {project.control}.execution_logs SET created_at = now() - interval '8 days'")
        )
    assert project.flx("run", "ok-job").returncode == 0  # a run start expires old logs
    second = executions(engine, "ok-job")[-1]
    assert _chunks(engine, project, first.id) == []
    assert len(_chunks(engine, project, second.id)) == 1
