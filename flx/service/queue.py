"""Runs on many machines: executions as procrastinate jobs in the same PostgreSQL, picked up by `flx worker`.

procrastinate's tables live in their own schema (`flx_queue`), apart from the control schema. A job is one
`flx run` (the runner still does retries, timeouts, the per-pipeline lock, validations and alerts); the
queue only decides *where* it runs. A job whose worker died (no procrastinate heartbeat) is retried by the
surviving workers, after stale-run recovery has marked the dead execution failed, so the history shows the
failed attempt and the retried one. A database restart stops neither the worker nor its job: queue queries
wait for the database (`ResilientConnector`) and the runner keeps its lease.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import procrastinate
import psycopg
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.schema import SchemaManager
from psycopg import sql

from flx.config import FlxSettings
from flx.execution.dbretry import DatabaseUnavailable, is_transient, short_reason
from flx.execution.runner import Runner, RunOutcome
from flx.service.queue_connector import ResilientConnector

log = logging.getLogger(__name__)

QUEUE_SCHEMA = "flx_queue"
TASK = "flx.run_pipeline"


@dataclass(frozen=True)
class FlxQueue:
    """A procrastinate app and the queue of one flx deployment.

    The queue is named after the control schema: two deployments sharing a database (prod and staging,
    or two test runs) never run each other's jobs.
    """

    app: procrastinate.App
    name: str


@dataclass
class WorkerState:
    """What the task needs from the worker process; set once by `flx worker` before jobs run."""

    settings: FlxSettings
    make_runner: Callable[[], Runner]  # the container's RunnerFactory
    runners: list[Runner] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_runner(self) -> Runner:
        runner = self.make_runner()
        with self.lock:
            self.runners.append(runner)
        return runner

    def cancel_all(self) -> None:
        with self.lock:
            for runner in self.runners:
                runner.cancel()


# The key of the worker's state in procrastinate's `additional_context`, which every job's context carries.
STATE_KEY = "flx"


def make_queue(conninfo: str, name: str) -> FlxQueue:
    """A procrastinate app on flx's database, its tables in `flx_queue`, for the queue `name`."""
    connector = ResilientConnector(conninfo=conninfo, kwargs={"options": f"-c search_path={QUEUE_SCHEMA}"})
    app = procrastinate.App(connector=connector)
    app.task(name=TASK, queue=name, pass_context=True)(_run_pipeline)
    return FlxQueue(app, name)


def ensure_queue_schema(conninfo: str) -> None:
    """Install procrastinate's schema once (idempotent, serialised across processes)."""
    with psycopg.connect(conninfo, autocommit=False) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('flx queue schema'))")
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(QUEUE_SCHEMA)))
        installed = conn.execute("SELECT to_regclass(%s)", (f"{QUEUE_SCHEMA}.procrastinate_jobs",)).fetchone()
        if installed and installed[0] is None:
            conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(QUEUE_SCHEMA)))
            conn.execute(SchemaManager.get_schema())
        conn.commit()


def enqueue(queue: FlxQueue, args: tuple[str, ...], trigger: str, lock_key: str | None = None) -> int | None:
    """Queue one run; with `lock_key`, a second enqueue of the same key while the first waits is a no-op."""
    lock = f"{queue.name}:{lock_key}" if lock_key else None  # procrastinate's locks span all queues
    with queue.app.open():
        try:
            return queue.app.configure_task(TASK, queue=queue.name, queueing_lock=lock).defer(
                args=list(args), trigger=trigger
            )
        except AlreadyEnqueued:
            log.info("%s is already queued (%s)", " ".join(args), lock_key)
            return None


def _run_pipeline(context: procrastinate.JobContext, args: list[str], trigger: str) -> str:
    state = context.additional_context.get(STATE_KEY)
    if not isinstance(state, WorkerState):
        raise RuntimeError("flx task run outside `flx worker`")
    job = context.job
    if job.attempts:
        trigger = f"{trigger} (queue job {job.id}, retried after its worker stopped)"
    runner = state.new_runner()
    # A retried job's previous attempt died with its worker; Meltano still thinks that run is going.
    outcome: RunOutcome = runner.run(
        state.settings.pipeline(tuple(args)), trigger=trigger, force=bool(job.attempts)
    )
    return outcome.status.value


def _lost_connection(exc: BaseException) -> bool:
    return isinstance(exc.__cause__, psycopg.OperationalError)


def run_worker(
    queue: FlxQueue, state: WorkerState, name: str, stalled_after_seconds: float, grace_seconds: float
) -> None:
    """Process jobs until SIGTERM/SIGINT; meanwhile retry the jobs of workers that died."""
    app = queue.app

    async def main() -> None:
        async with app.open_async():
            recovery = asyncio.create_task(_retry_stalled(queue, state, stalled_after_seconds))
            try:
                await app.run_worker_async(
                    queues=[queue.name],
                    name=name,
                    concurrency=1,
                    update_heartbeat_interval=max(1.0, stalled_after_seconds / 5),
                    stalled_worker_timeout=stalled_after_seconds,
                    shutdown_graceful_timeout=grace_seconds,
                    delete_jobs="never",
                    additional_context={STATE_KEY: state},
                )
            finally:
                recovery.cancel()
                state.cancel_all()

    asyncio.run(main())


async def _retry_stalled(queue: FlxQueue, state: WorkerState, stalled_after_seconds: float) -> None:
    app = queue.app
    while True:
        await asyncio.sleep(stalled_after_seconds / 2)
        try:
            stalled = list(
                await app.job_manager.get_stalled_jobs(
                    queue=queue.name, seconds_since_heartbeat=stalled_after_seconds
                )
            )
            if not stalled:
                continue
            # First fail the dead executions (their lock sessions are gone), so the retry finds the way free
            # and the history shows what happened.
            await asyncio.to_thread(state.new_runner().recover)
            for job in stalled:
                log.warning("queue job %s: its worker stopped heartbeating; retrying it", job.id)
                await app.job_manager.retry_job(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a retry raced with another worker's, or the database blinked: next round
            if isinstance(exc, DatabaseUnavailable) or is_transient(exc) or _lost_connection(exc):
                log.warning("stalled-job recovery pass skipped: %s", short_reason(exc.__cause__ or exc))
            else:
                log.exception("stalled-job recovery pass failed")
