"""`flx serve`: scheduled pipelines on one machine, through the same runner as `flx run`.

Every due tick is claimed with an INSERT on its unique key before it runs, so several `flx serve` processes
(on one machine or many, sharing the database) run each tick once. A tick whose pipeline is still running
from the previous tick is not queued: the runner refuses the overlap and the execution is recorded as
skipped. Ticks missed while no scheduler ran are handled by the pipeline's `catchup` policy and the ones not
run are recorded as `missed`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert

from flx.alerts.manager import AlertManager
from flx.config import FlxSettings, PipelineSettings
from flx.execution.records import sync_pipeline
from flx.execution.runner import Runner
from flx.schedule import Clock, Schedule, SystemClock, due_ticks, jittered, parse_schedule, tick_key
from flx.validation.runner import ValidationRunner
from flx_core.models import ScheduleTick
from flx_core.settings import SettingsError

log = logging.getLogger(__name__)


def scheduled(settings: FlxSettings) -> dict[str, Schedule]:
    """The pipelines that have a schedule, with it parsed (a bad cron or time zone fails at start-up)."""
    schedules = {}
    for name, pipeline in sorted(settings.pipelines.items()):
        try:
            schedule = parse_schedule(pipeline.schedule, pipeline.timezone)
        except ValueError as exc:
            raise SettingsError(f"pipeline {name!r}: {exc}") from None
        if schedule is not None:
            schedules[name] = schedule
    return schedules


@dataclass
class _Running:
    runner: Runner
    thread: threading.Thread


@dataclass
class Scheduler:
    """Turns ticks into runs; `tick_once()` is one pass (tests drive it with a fake clock)."""

    settings: FlxSettings
    engine: Engine
    validations: ValidationRunner
    alerts: AlertManager
    clock: Clock = field(default_factory=SystemClock)
    jitter_seconds: float = 0.0
    # With a queue (`flx serve --queue`), ticks are handed to `flx worker`s instead of run here:
    # dispatch(pipeline, trigger, tick key).
    dispatch: Callable[[PipelineSettings, str, str], None] | None = None
    # Where each tick's runner comes from: the container's `RunnerFactory`, else one built here.
    make_runner: Callable[[], Runner] | None = None
    _schedules: dict[str, Schedule] = field(init=False)
    _since: datetime = field(init=False)
    _pipeline_ids: dict[str, uuid.UUID] = field(init=False, default_factory=dict)
    _running: list[_Running] = field(init=False, default_factory=list)
    _stopping: threading.Event = field(init=False, default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._schedules = scheduled(self.settings)
        self._since = self.clock.now()
        for name in self._schedules:
            self._pipeline_ids[name] = sync_pipeline(self.engine, self.settings.pipelines[name])

    @property
    def running(self) -> int:
        self._running = [r for r in self._running if r.thread.is_alive()]
        return len(self._running)

    def tick_once(self) -> list[threading.Thread]:
        """Claim and start every due tick; record missed ones. Returns the threads started."""
        now = self.clock.now()
        started = []
        for name, schedule in self._schedules.items():
            pipeline = self.settings.pipelines[name]
            pipeline_id = self._pipeline_ids[name]
            plan = due_ticks(schedule, self._last_tick(pipeline_id), now, pipeline.catchup, since=self._since)
            for tick in plan.skipped:
                self._claim(pipeline, pipeline_id, tick, "missed", "missed while no scheduler ran (catchup)")
            for tick in plan.run:
                if jittered(tick, self.jitter_seconds, name) > now:
                    continue  # not yet: its jittered start is still ahead (claimed on a later pass)
                if not self._claim(pipeline, pipeline_id, tick, "started", None):
                    continue
                if self.dispatch is not None:
                    self.dispatch(pipeline, _trigger(tick), tick_key(pipeline.name, tick))
                else:
                    started.append(self._start(pipeline, tick))
        return started

    def run_forever(self, poll_seconds: float = 1.0) -> None:
        while not self._stopping.wait(poll_seconds):
            try:
                self.tick_once()
            except Exception:  # one bad pass (database restart) must not end the scheduler
                log.exception("scheduler pass failed; retrying in %.0f s", poll_seconds)

    def request_stop(self) -> None:
        """Safe from a signal handler: `run_forever` returns after its current pass."""
        self._stopping.set()

    def stop(self, grace_seconds: float) -> None:
        """No new ticks; running executions get `grace_seconds` to finish, then are cancelled."""
        self._stopping.set()
        deadline = time.monotonic() + grace_seconds
        for running in list(self._running):
            running.thread.join(max(0.0, deadline - time.monotonic()))
        for running in self._running:
            if running.thread.is_alive():
                log.warning("grace period over: cancelling %s", running.thread.name)
                running.runner.cancel()
        for running in self._running:
            running.thread.join()

    def _last_tick(self, pipeline_id: uuid.UUID) -> datetime | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.max(ScheduleTick.tick_at)).where(ScheduleTick.pipeline_id == pipeline_id)
            ).scalar()

    def _claim(
        self,
        pipeline: PipelineSettings,
        pipeline_id: uuid.UUID,
        tick: datetime,
        status: str,
        detail: str | None,
    ) -> bool:
        """True for the one process whose INSERT of the tick's key won."""
        with self.engine.begin() as conn:
            claimed = conn.execute(
                insert(ScheduleTick)
                .values(
                    pipeline_id=pipeline_id,
                    tick_at=tick,
                    key=tick_key(pipeline.name, tick),
                    status=status,
                    detail=detail,
                )
                .on_conflict_do_nothing(index_elements=[ScheduleTick.key])
                .returning(ScheduleTick.id)
            ).scalar()
        return claimed is not None

    def _start(self, pipeline: PipelineSettings, tick: datetime) -> threading.Thread:
        if self.make_runner is not None:
            runner = self.make_runner()
        else:
            runner = Runner(self.settings, self.engine, self.validations, self.alerts)
        key = tick_key(pipeline.name, tick)

        def run() -> None:
            try:
                outcome = runner.run(pipeline, trigger=_trigger(tick))
                with self.engine.begin() as conn:
                    conn.execute(
                        update(ScheduleTick)
                        .where(ScheduleTick.key == key)
                        .values(execution_id=outcome.execution_id, detail=outcome.status.value)
                    )
                log.info("%s tick %s: %s", pipeline.name, tick.isoformat(), outcome.status.value)
            except Exception:
                log.exception("%s tick %s could not run", pipeline.name, tick.isoformat())

        thread = threading.Thread(target=run, name=f"flx-{pipeline.name}@{tick.isoformat()}")
        self._running.append(_Running(runner, thread))
        thread.start()
        return thread


def _trigger(tick: datetime) -> str:
    return f"schedule {tick.isoformat()}"
