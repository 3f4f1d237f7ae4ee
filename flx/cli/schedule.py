"""`flx serve` and `flx schedule list`: the scheduler's commands."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from rich.table import Table
from sqlalchemy import Engine, select

from flx.alerts.manager import AlertManager
from flx.cli.context import app, console, database, load
from flx.cli.errors import EXIT_USAGE, FlxError
from flx.cli.views import status_text
from flx.config import FlxSettings, PipelineSettings
from flx.execution.runner import RunnerFactory
from flx.service.queue import FlxQueue, WorkerState, enqueue, ensure_queue_schema, make_queue, run_worker
from flx.service.scheduler import Scheduler, scheduled
from flx.validation.runner import ValidationRunner
from flx_core.models import Execution, Pipeline
from flx_core.settings import libpq_conninfo

F = TypeVar("F", bound=Callable[..., Any])


def metrics_options(command: F) -> F:
    """`--metrics-port` and `--metrics-host`, the same for `flx serve` and `flx worker`."""
    command = click.option(
        "--metrics-host",
        default="127.0.0.1",
        show_default=True,
        help="Address /metrics listens on (0.0.0.0: all).",
    )(command)
    return click.option(
        "--metrics-port", type=click.IntRange(0, 65535), help="Serve Prometheus /metrics on this port."
    )(command)


@click.command()
@click.option("--grace", default=300.0, show_default=True, help="Seconds running jobs get after SIGTERM.")
@click.option("--jitter", default=0.0, show_default=True, help="Spread each tick's start by up to this.")
@click.option(
    "--queue", "use_queue", is_flag=True, help="Hand ticks to `flx worker`s instead of running them."
)
@metrics_options
def serve(grace: float, jitter: float, use_queue: bool, metrics_port: int | None, metrics_host: str) -> None:
    """Run scheduled pipelines (cron in each pipeline's time zone) until SIGTERM."""
    check_schedules(load(), "flx serve")
    with app() as container:
        settings = container.resolve(FlxSettings)
        _serve_metrics(container, metrics_port, metrics_host)
        dispatch = None
        if use_queue:
            queued_to = queue_app(settings)

            def dispatch(pipeline: PipelineSettings, trigger: str, key: str) -> None:
                enqueue(queued_to, (pipeline.name,), trigger, key)

        scheduler = Scheduler(
            settings,
            container.resolve(Engine),
            container.resolve(ValidationRunner),
            container.resolve(AlertManager),
            jitter_seconds=jitter,
            dispatch=dispatch,
            make_runner=container.resolve(RunnerFactory),
        )

        def shutdown(signum: int, _frame: FrameType | None) -> None:
            console().print(f"flx serve: {signal.Signals(signum).name}: no new ticks, {grace:.0f} s grace")
            scheduler.request_stop()

        signal.signal(signal.SIGTERM, shutdown)
        signal.signal(signal.SIGINT, shutdown)
        console().print(f"flx serve: scheduling {_next_ticks(settings) or 'nothing'}", highlight=False)
        scheduler.run_forever()
        scheduler.stop(grace)


@click.group()
def schedule() -> None:
    """Scheduled pipelines."""


@schedule.command("list")
def list_schedules() -> None:
    """Each schedule with its time zone, last run and next run."""
    check_schedules(load(), "flx schedule list")
    with app() as container:
        settings = container.resolve(FlxSettings)
        engine = container.resolve(Engine)
        table = Table(title="flx schedules", header_style="bold")
        for column in ("pipeline", "schedule", "time zone", "catch-up", "last run", "status", "next run"):
            table.add_column(column)
        now = datetime.now(UTC)
        with engine.connect() as conn:
            for name, sched in scheduled(settings).items():
                pipeline = settings.pipelines[name]
                last = conn.execute(
                    select(Execution.started_at, Execution.status)
                    .join(Pipeline, Pipeline.id == Execution.pipeline_id)
                    .where(Pipeline.name == name)
                    .order_by(Execution.created_at.desc())
                    .limit(1)
                ).one_or_none()
                upcoming, zone = sched.next_after(now), ZoneInfo(sched.timezone)
                table.add_row(
                    name,
                    pipeline.schedule or "",
                    pipeline.timezone,
                    pipeline.catchup,
                    f"{last[0].astimezone(zone):%Y-%m-%d %H:%M %Z}" if last and last[0] else "never",
                    status_text(last[1]) if last else "",
                    f"{upcoming.astimezone(zone):%Y-%m-%d %H:%M %Z}",
                )
    console().print(table)


def _next_ticks(settings: FlxSettings) -> str:
    """`name (next 2026-01-02 02:00 WET)` for each scheduled pipeline, in its own time zone."""
    now = datetime.now(UTC)
    return ", ".join(
        f"{name} (next {sched.next_after(now).astimezone(ZoneInfo(sched.timezone)):%Y-%m-%d %H:%M %Z})"
        for name, sched in scheduled(settings).items()
    )


def check_schedules(settings: FlxSettings, command: str) -> None:
    """Every pipeline's cron and time zone parse, or one line naming the first that does not."""
    from flx.schedule import parse_schedule

    for name, pipeline in sorted(settings.pipelines.items()):
        try:
            parse_schedule(pipeline.schedule, pipeline.timezone)
        except ValueError as exc:
            where = settings.project_root / "meltano.yml" if settings.project_root else "the settings"
            raise FlxError(f"{command}: pipeline {name!r} in {where}: {exc}", EXIT_USAGE) from exc


def queue_app(settings: FlxSettings) -> FlxQueue:
    """This deployment's queue: named after its control schema."""
    conninfo = libpq_conninfo(database(settings).url())
    ensure_queue_schema(conninfo)
    return make_queue(conninfo, settings.database.control_schema)


@click.command()
@click.option("--name", default=None, help="Shown in logs and procrastinate's worker table.")
@click.option(
    "--stalled-after", default=30.0, show_default=True, help="Seconds without heartbeat = worker dead."
)
@click.option("--grace", default=300.0, show_default=True, help="Seconds a running job gets after SIGTERM.")
@metrics_options
def worker(
    name: str | None, stalled_after: float, grace: float, metrics_port: int | None, metrics_host: str
) -> None:
    """Run queued executions (from `flx run --queue` and `flx serve --queue`) until SIGTERM."""
    with app() as container:
        settings = container.resolve(FlxSettings)
        _serve_metrics(container, metrics_port, metrics_host)
        state = WorkerState(settings, container.resolve(RunnerFactory))
        worker_name = name or f"{socket.gethostname()}:{os.getpid()}"
        queue = queue_app(settings)
        console().print(f"flx worker {worker_name}: waiting for jobs on queue {queue.name!r}")
        run_worker(queue, state, worker_name, stalled_after, grace)


def _serve_metrics(container: Any, port: int | None, host: str) -> None:
    """Prometheus /metrics from this process (for a process without `flx ui`), for as long as it runs."""
    if port is None:
        return
    from flx.metrics import start_metrics_server

    engine = container.resolve(Engine)
    start_metrics_server(port, lambda: engine, addr=host)
    console().print(f"metrics on http://{host}:{port}/metrics")
