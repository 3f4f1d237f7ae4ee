"""`flx run` end to end: real `meltano run`, real target-flx, real PostgreSQL, a real webhook for alerts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from flx_core.models import Alert, Execution, StreamLoad, ValidationResult
from tests.flx.meltano_project import MeltanoProject, events, executions
from tests.flx.webhook import Webhook, webhook_server

pytestmark = pytest.mark.slow


@pytest.fixture
def engine(project: MeltanoProject, database_url: URL) -> Iterator[Engine]:
    """The project's own control schema (overrides the session-wide `flx` one)."""
    eng = project.engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def hook() -> Iterator[Webhook]:
    with webhook_server() as server:
        yield server


def latest(engine: Engine, pipeline: str) -> Execution:
    return executions(engine, pipeline)[-1]


def wait_for_status(engine: Engine, pipeline: str, status: str, timeout: float = 60) -> Execution:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            execution = latest(engine, pipeline)
            if execution.status == status:
                return execution
        except Exception:  # the pipeline row may not exist yet
            pass
        time.sleep(0.3)
    raise AssertionError(f"{pipeline} never reached {status}")


def tap_processes(script: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", script], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def test_success_is_recorded_with_events_loads_and_history(project: MeltanoProject, engine: Engine) -> None:
    done = project.flx("run", "ok-job")
    assert done.returncode == 0, done.stdout + done.stderr

    execution = latest(engine, "ok-job")
    assert execution.status == "succeeded"
    assert execution.exit_code == 0
    assert execution.attempt == 1
    assert execution.started_at is not None and execution.ended_at is not None
    assert execution.duration_seconds is not None and execution.duration_seconds > 0
    assert execution.run_id is not None
    assert [(seq, type_) for seq, type_, _ in events(engine, execution.id)] == [
        (1, "pending"),
        (2, "running"),
        (3, "succeeded"),
    ]
    # target-flx saw FLX_EXECUTION_ID and MELTANO_RUN_ID through meltano: its load history links here.
    with Session(engine) as session:
        load = session.scalars(select(StreamLoad).where(StreamLoad.execution_id == execution.id)).one()
    assert (load.stream, load.rows_inserted, load.status) == ("items", 5, "succeeded")
    assert load.run_id == execution.run_id
    with engine.connect() as conn:
        assert conn.execute(text(f'SELECT count(*) FROM "{project.schema}"."items"')).scalar() == 5

    listed = project.flx("history", "--json", "--pipeline", "ok-job")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert rows[0]["id"] == str(execution.id)
    assert rows[0]["status"] == "succeeded" and rows[0]["exit_code"] == 0 and rows[0]["attempt"] == 1
    assert rows[0]["duration_seconds"] > 0

    shown = project.flx("show", "ok-job#1")
    assert shown.returncode == 0, shown.stderr
    assert "succeeded" in shown.stdout and "items" in shown.stdout


def test_failure_exits_non_zero_records_reason_and_alerts_once(
    project: MeltanoProject, engine: Engine, hook: Webhook
) -> None:
    project.env["FLX_ALERT_URLS"] = hook.url
    first = project.flx("run", "fail-job")
    assert first.returncode == 1, first.stdout
    execution = latest(engine, "fail-job")
    assert execution.status == "failed"
    assert execution.exit_code == 1  # meltano's own exit code when a block fails
    assert execution.error and "ORA-12541" in execution.error
    assert execution.log_tail and "ORA-12541" in execution.log_tail
    assert [t for _, t, _ in events(engine, execution.id)] == ["pending", "running", "failed"]
    assert len(hook.about("fail-job")) == 1 and "fail-job" in hook.about("fail-job")[0]

    second = project.flx("run", "fail-job")
    assert second.returncode == 1
    assert latest(engine, "fail-job").execution_number == 2
    assert len(hook.about("fail-job")) == 1, "an ongoing failure is not sent twice within repeat_interval"


def test_retry_then_success_and_resolved_alert(
    project: MeltanoProject, engine: Engine, hook: Webhook
) -> None:
    project.env["FLX_ALERT_URLS"] = hook.url
    project.configure(pipelines={"flaky-job": {"retry_delay_seconds": 0.2}})

    failed = project.flx("run", "flaky-job")  # no retries configured: the first failure is final
    assert failed.returncode == 1
    assert len(hook.about("flaky-job")) == 1

    done = project.flx("run", "flaky-job", "--retries", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert project.tap_calls("flaky") == 2  # a failure with retries, then success: only one retry needed
    execution = latest(engine, "flaky-job")
    assert (execution.status, execution.attempt, execution.execution_number) == ("succeeded", 1, 2)
    assert len(hook.about("flaky-job")) == 2
    assert "flaky-job resolved" in hook.about("flaky-job")[1]


def test_retries_with_backoff_recorded(project: MeltanoProject, engine: Engine) -> None:
    project.configure(pipelines={"flaky-job": {"retries": 2, "retry_delay_seconds": 0.2}})
    done = project.flx("run", "flaky-job")
    assert done.returncode == 0, done.stdout + done.stderr
    execution = latest(engine, "flaky-job")
    assert (execution.status, execution.attempt) == ("succeeded", 2)
    log = events(engine, execution.id)
    assert [t for _, t, _ in log] == [
        "pending",
        "running",
        "retrying",
        "retry_scheduled",
        "running",
        "succeeded",
    ]
    retrying = log[2][2]
    assert retrying["exit_code"] == 1 and "ORA-12541" in retrying["error"]
    assert 0.1 <= log[3][2]["delay_seconds"] <= 0.3
    assert execution.error is None, "a success after a retry carries no stale error"


def test_timeout_kills_the_whole_process_group(project: MeltanoProject, engine: Engine) -> None:
    started = time.monotonic()
    done = project.flx("run", "hang-job", "--timeout", "10")
    elapsed = time.monotonic() - started
    assert done.returncode == 124, done.stdout + done.stderr
    assert elapsed < 60
    execution = latest(engine, "hang-job")
    assert execution.status == "timed_out"
    assert execution.error and "timed out" in execution.error
    assert not tap_processes(str(project.root / "tap_hang.py")), "the tap outlived the timeout"


def test_overlap_is_refused_and_sigterm_cancels(project: MeltanoProject, engine: Engine) -> None:
    first = project.flx_background("run", "hang-job")
    try:
        running = wait_for_status(engine, "hang-job", "running")
        deadline = time.monotonic() + 30
        while not tap_processes(str(project.root / "tap_hang.py")) and time.monotonic() < deadline:
            time.sleep(0.2)

        second = project.flx("run", "hang-job")
        assert second.returncode == 75
        assert "already running" in second.stderr
        refused = latest(engine, "hang-job")
        assert refused.status == "skipped" and refused.id != running.id

        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 130
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    with Session(engine) as session:
        cancelled = session.get(Execution, running.id)
        assert cancelled is not None and cancelled.status == "cancelled"
    assert not tap_processes(str(project.root / "tap_hang.py"))


def test_dead_runner_is_marked_failed_by_next_start(project: MeltanoProject, engine: Engine) -> None:
    runner = project.flx_background("run", "stuck-job")
    running = wait_for_status(engine, "stuck-job", "running")
    deadline = time.monotonic() + 30
    while not (taps := tap_processes(str(project.root / "tap_stuck.py"))) and time.monotonic() < deadline:
        time.sleep(0.2)
    # The machine "dies": the runner and everything it started, at once, without a chance to record it.
    os.killpg(runner.pid, signal.SIGKILL)
    for pid in taps:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
    runner.wait(timeout=10)
    assert latest(engine, "stuck-job").status == "running", events(engine, running.id)

    project.configure(stale_after_seconds=1)
    time.sleep(1.5)
    listed = project.flx("history", "--json", "--pipeline", "stuck-job")
    assert listed.returncode == 0, listed.stderr
    row = json.loads(listed.stdout)[0]
    assert row["id"] == str(running.id)
    assert row["status"] == "failed"
    assert "heartbeat stopped" in row["error"]
    last = events(engine, running.id)[-1]
    assert last[1] == "failed" and last[2]["reason"] == "stale_heartbeat"
    with Session(engine) as session:
        alert = session.scalars(select(Alert).where(Alert.fingerprint == "stuck-job:stuck:-")).one()
    assert alert.status == "firing" and alert.severity == "error"
    assert alert.last_message is not None
    assert f"stuck-job #{running.execution_number} stopped responding" in alert.last_message
    assert "Marked failed." in alert.last_message


def test_validations_pass_and_fail(project: MeltanoProject, engine: Engine) -> None:
    table = f"{project.schema}.items"
    project.configure(
        pipelines={
            "ok-job": {
                "validations": [
                    {"name": "enough rows", "kind": "min_rows", "table": table, "min_rows": 5},
                    {"name": "ids unique", "kind": "unique", "table": table, "columns": ["id"]},
                ]
            }
        }
    )
    assert project.flx("run", "ok-job").returncode == 0
    passed = latest(engine, "ok-job")
    assert passed.status == "succeeded"

    project.configure(
        pipelines={
            "ok-job": {
                "validations": [
                    {"name": "enough rows", "kind": "min_rows", "table": table, "min_rows": 5},
                    {"name": "names present", "kind": "not_null", "table": table, "columns": ["name"]},
                ]
            }
        }
    )
    done = project.flx("run", "ok-job")
    assert done.returncode == 3, done.stdout + done.stderr
    failed = latest(engine, "ok-job")
    assert failed.status == "failed_validation"
    assert failed.error and "names present" in failed.error
    with Session(engine) as session:
        results = dict(
            session.execute(
                select(ValidationResult.check_name, ValidationResult.status).where(
                    ValidationResult.execution_id == failed.id
                )
            ).all()
        )
    assert results == {"enough rows": "passed", "names present": "failed"}
