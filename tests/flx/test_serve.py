"""The scheduler driven by a fake clock, running real `meltano run` jobs against the real database."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from flx.alerts.manager import AlertManager
from flx.config import FlxSettings, PipelineSettings, load_settings
from flx.container import FlxContainer, build_container
from flx.schedule import FakeClock
from flx.service.queue import QUEUE_SCHEMA, enqueue, ensure_queue_schema, make_queue
from flx.service.scheduler import Scheduler
from flx.validation.runner import ValidationRunner
from flx_core.models import Pipeline, ScheduleTick
from flx_core.settings import libpq_conninfo
from tests.flx.meltano_project import MeltanoProject, executions, make_project

pytestmark = pytest.mark.slow

# 2026-03-29 is the spring-forward day in Lisbon (01:00 UTC: 01:00 WET becomes 02:00 WEST).
START = datetime(2026, 3, 29, 0, 58, 30, tzinfo=UTC)


def scheduled_project(tmp_path: Path, database_url: URL, job: str, schedule: str) -> MeltanoProject:
    url = database_url.render_as_string(hide_password=False)
    project = make_project(tmp_path / "project", url, f"serve_{uuid.uuid4().hex[:8]}")
    project.configure(pipelines={job: {"schedule": schedule, "timezone": "Europe/Lisbon"}})
    return project


@pytest.fixture
def ok_every_5(tmp_path: Path, database_url: URL) -> Iterator[FlxContainer]:
    project = scheduled_project(tmp_path, database_url, "ok-job", "*/5 * * * *")
    with build_container(load_settings(project.root, project.env)) as built:
        yield built


@pytest.fixture
def hang_every_minute(tmp_path: Path, database_url: URL) -> Iterator[FlxContainer]:
    project = scheduled_project(tmp_path, database_url, "hang-job", "*/1 * * * *")
    with build_container(load_settings(project.root, project.env)) as built:
        yield built


_started: list[Scheduler] = []


@pytest.fixture(autouse=True)
def _stop_schedulers() -> Iterator[None]:
    """A failed assertion must not leave a scheduled `meltano run` behind."""
    yield
    while _started:
        _started.pop().stop(grace_seconds=1)


def scheduler(container: FlxContainer, clock: FakeClock) -> Scheduler:
    made = Scheduler(
        container.resolve(FlxSettings),
        container.resolve(Engine),
        container.resolve(ValidationRunner),
        container.resolve(AlertManager),
        clock=clock,
    )
    _started.append(made)
    return made


def ticks(engine: Engine, pipeline: str) -> list[tuple[datetime, str]]:
    with Session(engine) as session:
        return [
            (tick_at, status)
            for tick_at, status in session.execute(
                select(ScheduleTick.tick_at, ScheduleTick.status)
                .join(Pipeline, Pipeline.id == ScheduleTick.pipeline_id)
                .where(Pipeline.name == pipeline)
                .order_by(ScheduleTick.tick_at)
            )
        ]


def test_each_tick_runs_once_across_schedulers_and_catches_up_latest(ok_every_5: FlxContainer) -> None:
    container = ok_every_5
    engine = container.resolve(Engine)
    clock = FakeClock(START)
    first, second = scheduler(container, clock), scheduler(container, clock)
    assert first.tick_once() == [] and second.tick_once() == []  # nothing due before 01:00 UTC

    clock.set(START + timedelta(minutes=2))  # 01:00:30 UTC = 02:00:30 WEST, just after the jump
    started = first.tick_once() + second.tick_once()
    assert len(started) == 1, "two schedulers, one tick, one run"
    for thread in started:
        thread.join(timeout=180)
    [execution] = executions(engine, "ok-job")
    assert execution.status == "succeeded"
    assert execution.trigger == "schedule 2026-03-29T01:00:00+00:00"
    assert ticks(engine, "ok-job") == [(datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "started")]

    # Down for three hours: catch-up "latest" runs the newest missed tick, the rest are recorded as missed.
    clock.set(START + timedelta(hours=3, minutes=2))
    for thread in first.tick_once():
        thread.join(timeout=180)
    recorded = ticks(engine, "ok-job")
    assert [status for _, status in recorded].count("missed") == 35
    assert recorded[-1] == (datetime(2026, 3, 29, 4, 0, tzinfo=UTC), "started")
    assert [e.status for e in executions(engine, "ok-job")] == ["succeeded", "succeeded"]


def test_a_tick_during_a_running_execution_is_skipped_and_shutdown_cancels(
    hang_every_minute: FlxContainer,
) -> None:
    container = hang_every_minute
    engine = container.resolve(Engine)
    clock = FakeClock(START)
    serve = scheduler(container, clock)
    clock.set(START + timedelta(minutes=1))
    [running] = serve.tick_once()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        (found := executions(engine, "hang-job")) and found[0].status == "running"
    ):
        time.sleep(0.2)

    clock.advance(60)
    [overlapping] = serve.tick_once()
    overlapping.join(timeout=60)
    statuses = [e.status for e in executions(engine, "hang-job")]
    assert statuses == ["running", "skipped"], "the second tick is recorded as skipped, not queued"

    serve.stop(grace_seconds=1)
    assert not running.is_alive()
    assert [e.status for e in executions(engine, "hang-job")] == ["cancelled", "skipped"]


def test_with_a_queue_each_tick_is_enqueued_once(ok_every_5: FlxContainer, database_url: URL) -> None:
    conninfo = libpq_conninfo(database_url)
    ensure_queue_schema(conninfo)
    ensure_queue_schema(conninfo)  # idempotent
    queue = make_queue(conninfo, ok_every_5.resolve(FlxSettings).database.control_schema)
    clock = FakeClock(START)

    def dispatch(pipeline: PipelineSettings, trigger: str, key: str) -> None:
        enqueue(queue, (pipeline.name,), trigger, key)

    schedulers = [scheduler(ok_every_5, clock) for _ in range(2)]
    for each in schedulers:
        each.dispatch = dispatch
    clock.set(START + timedelta(minutes=12))
    assert [each.tick_once() for each in schedulers] == [[], []], "nothing runs locally with a queue"
    with psycopg.connect(conninfo) as conn:
        jobs = conn.execute(
            f"SELECT args->'args', args->>'trigger' FROM {QUEUE_SCHEMA}.procrastinate_jobs"
            " WHERE queue_name = %s ORDER BY id",
            (queue.name,),
        ).fetchall()
    assert jobs == [(["ok-job"], "schedule 2026-03-29T01:10:00+00:00")]
