"""Three `flx worker`s and two `flx serve --queue` schedulers, real processes on one PostgreSQL, for a few
minutes of an every-minute schedule: each tick runs exactly once, and a worker SIGKILLed mid-run has its
execution recovered and retried, with the history saying so. Stops by itself within six minutes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TypeVar

import psycopg
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from flx.service.queue import QUEUE_SCHEMA
from flx_core.models import Execution, Pipeline, ScheduleTick
from flx_core.settings import libpq_conninfo
from tests.flx.meltano_project import BIN, MeltanoProject, events, executions, make_project

pytestmark = pytest.mark.slow

T = TypeVar("T")
TICKS_WANTED = 3
DEADLINE_SECONDS = 330


def eventually(check: Callable[[], T | None], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := check()) is not None:
            return value
        time.sleep(0.5)
    raise AssertionError(f"condition not reached within {timeout:.0f} s")


class Fleet:
    """Background `flx` processes, each in its own session, logging to a file (a pipe nobody reads
    would fill up and stall them)."""

    def __init__(self, project: MeltanoProject, logs: Path) -> None:
        self.project, self.logs = project, logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._files: list[IO[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        self._files.append(log)
        process = subprocess.Popen(
            [str(BIN / "flx"), *args],
            cwd=self.project.root,
            env=self.project.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for log in self._files:
            log.close()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]


@pytest.fixture
def project(tmp_path: Path, database_url: URL) -> MeltanoProject:
    project = make_project(
        tmp_path / "project",
        database_url.render_as_string(hide_password=False),
        f"fleet_{uuid.uuid4().hex[:8]}",
    )
    project.configure(
        pipelines={"slow-job": {"schedule": "* * * * *", "timezone": "Europe/Lisbon", "catchup": "none"}}
    )
    return project


@pytest.fixture
def fleet(project: MeltanoProject, tmp_path: Path) -> Iterator[Fleet]:
    started = Fleet(project, tmp_path)
    try:
        yield started
    finally:
        started.stop()
        for pid in _pids_of(project.root / "tap_slow.py"):  # a killed worker's orphaned `meltano run`
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)


def _pids_of(pattern: Path) -> list[int]:
    found = subprocess.run(["pgrep", "-f", str(pattern)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def test_workers_and_schedulers_run_each_tick_once_and_recover_a_killed_worker(
    project: MeltanoProject, fleet: Fleet, database_url: URL
) -> None:
    engine = project.engine(database_url)
    workers = [
        fleet.start(f"worker{i}", "worker", "--name", f"w{i}", "--stalled-after", "4", "--grace", "5")
        for i in range(3)
    ]
    for i in range(2):
        fleet.start(f"serve{i}", "serve", "--queue", "--grace", "5")
    begun = datetime.now(UTC)

    # The first tick's run: SIGKILL the worker running it, with its `meltano run` (the machine dies).
    running = eventually(
        lambda: next((e for e in executions(engine, "slow-job") if e.status == "running"), None), timeout=100
    )
    victim = next(w for w in workers if w.pid == running.pid)
    taps = eventually(lambda: _pids_of(project.root / "tap_slow.py") or None, timeout=30)
    os.killpg(victim.pid, signal.SIGKILL)
    for pid in taps:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)

    # Let the schedule tick on until TICKS_WANTED ticks are done, then stop everything mid-minute.
    def enough_done() -> list[Execution] | None:
        done = [e for e in executions(engine, "slow-job") if e.status == "succeeded"]
        return done if len(done) >= TICKS_WANTED else None

    eventually(enough_done, timeout=DEADLINE_SECONDS - (datetime.now(UTC) - begun).total_seconds())
    time.sleep(max(0.0, 20 - datetime.now(UTC).second))  # well clear of the next minute's tick
    survivors = {name: p for name, p in fleet.processes.items() if p is not victim}
    assert all(p.poll() is None for p in survivors.values()), {n: fleet.log(n) for n in survivors}
    fleet.stop()
    ended = datetime.now(UTC)

    # Every minute boundary while both schedulers ran was claimed once and queued once.
    ticks = _ticks(engine)
    expected = _minutes_between(begun + timedelta(seconds=10), ended - timedelta(seconds=10))
    assert set(expected) <= set(ticks), (expected, ticks)
    assert len(ticks) == len(set(ticks))
    jobs = _queued_triggers(database_url, project.control)
    assert Counter(_tick_of(trigger) for trigger in jobs) == Counter(ticks), jobs

    # Each tick ran exactly once: one execution, except the killed one, failed by recovery and retried.
    history = executions(engine, "slow-job")
    by_tick = {tick: [e for e in history if _tick_of(e.trigger) == tick] for tick in ticks}
    assert sum(len(runs) for runs in by_tick.values()) == len(history), "every execution belongs to a tick"
    killed = next(runs for runs in by_tick.values() if any(e.id == running.id for e in runs))
    assert [e.status for e in killed] == ["failed", "succeeded"]
    assert killed[0].error and "heartbeat stopped" in killed[0].error
    assert "retried after its worker stopped" in killed[1].trigger and killed[1].pid != victim.pid
    assert _last_event_reason(engine, killed[0]) == "stale_heartbeat"
    for tick, runs in by_tick.items():
        if runs is not killed:
            assert [e.status for e in runs] == ["succeeded"], (tick, runs)
    ran_on = {e.pid for e in history}
    assert len(ran_on) >= 2, "the queue spread the runs over the workers"


def _ticks(engine: Engine) -> list[datetime]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(ScheduleTick.tick_at)
                .join(Pipeline, Pipeline.id == ScheduleTick.pipeline_id)
                .where(Pipeline.name == "slow-job")
                .order_by(ScheduleTick.tick_at)
            )
        )


def _tick_of(trigger: str) -> datetime:
    """The tick in a trigger: `schedule 2026-…T…+00:00`, maybe followed by the queue's retry note."""
    kind, when = trigger.split()[:2]
    assert kind == "schedule", trigger
    return datetime.fromisoformat(when)


def _minutes_between(start: datetime, end: datetime) -> list[datetime]:
    first = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return [first + timedelta(minutes=i) for i in range(int((end - first).total_seconds() // 60) + 1)]


def _queued_triggers(database_url: URL, queue: str) -> list[str]:
    with psycopg.connect(libpq_conninfo(database_url)) as conn:
        rows = conn.execute(
            f"SELECT args->>'trigger' FROM {QUEUE_SCHEMA}.procrastinate_jobs WHERE queue_name = %s",
            (queue,),
        ).fetchall()
    return [row[0] for row in rows]


def _last_event_reason(engine: Engine, execution: Execution) -> str | None:
    log = events(engine, execution.id)
    return log[-1][2].get("reason") if log else None
