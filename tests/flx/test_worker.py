"""`flx worker` processes on one PostgreSQL: queued runs execute once; a killed worker's job is recovered."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from flx_core.models import Execution
from tests.flx.meltano_project import MeltanoProject, events, executions

pytestmark = pytest.mark.slow

T = TypeVar("T")


@pytest.fixture
def engine(project: MeltanoProject, database_url: URL) -> Iterator[Engine]:
    """The project's own control schema (overrides the session-wide `flx` one)."""
    eng = project.engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def workers(project: MeltanoProject) -> Iterator[list[subprocess.Popen[str]]]:
    started = [
        project.flx_background("worker", "--name", f"w{i}", "--stalled-after", "4", "--grace", "5")
        for i in range(2)
    ]
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        if process.stdout is not None:  # shown by pytest when the test failed
            print(f"--- worker {process.pid} ---\n{process.stdout.read()[-4000:]}")


def eventually(check: Callable[[], T | None], timeout: float = 120) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := check()) is not None:
            return value
        time.sleep(0.3)
    raise AssertionError("condition not reached in time")


def test_queued_runs_execute_once_and_a_killed_workers_job_is_retried(
    project: MeltanoProject, engine: Engine, workers: list[subprocess.Popen[str]]
) -> None:
    queued = project.flx("run", "--queue", "ok-job")
    assert queued.returncode == 0, queued.stderr
    done = eventually(
        lambda: ((e := executions(engine, "ok-job")) and e[0].status == "succeeded" and e) or None
    )
    assert len(done) == 1

    assert project.flx("run", "--queue", "slow-job", "--trigger", "nightly").returncode == 0
    running = eventually(
        lambda: ((e := executions(engine, "slow-job")) and e[0].status == "running" and e[0]) or None
    )
    victim = next(w for w in workers if w.pid == running.pid)
    taps = eventually(
        lambda: (
            subprocess.run(
                ["pgrep", "-f", str(project.root / "tap_slow.py")], capture_output=True, text=True
            ).stdout.split()
            or None
        )
    )
    os.killpg(victim.pid, signal.SIGKILL)  # the worker's machine dies: worker, meltano and tap at once
    for pid in taps:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(int(pid)), signal.SIGKILL)

    def recovered() -> list[Execution] | None:
        found = executions(engine, "slow-job")
        return found if len(found) == 2 and found[1].status == "succeeded" else None

    first, retried = eventually(recovered)
    assert first.status == "failed" and first.error and "heartbeat stopped" in first.error
    assert (
        retried.trigger.startswith("nightly (queue job")
        and "retried after its worker stopped" in retried.trigger
    )
    survivor = next(w for w in workers if w is not victim)
    assert retried.pid == survivor.pid
    assert events(engine, first.id)[-1][2]["reason"] == "stale_heartbeat"
    assert len(executions(engine, "ok-job")) == 1, "a queued run executes exactly once"
