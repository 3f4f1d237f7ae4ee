"""Executions whose runner died: heartbeat stopped, status still running. Marked failed, with the reason.

Without this, a machine that lost power leaves a run "running" forever (Meltano's own #9147). Every `flx`
start sweeps; the row lock and status guard make two sweepers, or a sweeper and a slow-but-alive runner,
agree on one outcome (the runner then gets a ConcurrencyError on its next status change, or its lease
keeper sees it first and stops the job).

Burying a run must never let a second copy of its job start beside the first, so each rule waits until the
job is known to have ended:
- no heartbeat for `stale_after_seconds`: a runner stops its job itself well before that (its lease);
- its lock session ended and no heartbeat for `session_gone_after_seconds`: long enough for a runner that
  lost its connection to have given up re-acquiring and stopped its job (a database restart ends every
  session, so this cannot be sooner);
- on this machine, the runner's pid is dead and no heartbeat for `runner_gone_after_seconds`: certain.
A run recorded on this machine has what is left of its job (the recorded process group, only processes
carrying its execution id) ended before it is buried.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, column, func, select, table, update
from sqlalchemy.orm import Session

from flx.execution.proctree import end_job, host_identity, job_processes, pid_alive
from flx.execution.records import append_event
from flx_core.models import Execution, ExecutionEvent, ExecutionStatus, Pipeline
from flx_core.statuses import ACTIVE as _ACTIVE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StaleExecution:
    id: uuid.UUID
    pipeline: str
    execution_number: int
    heartbeat_at: datetime | None
    hostname: str | None
    pid: int | None


# Meltano believes a run is alive for 5 minutes after its last heartbeat (HEARTBEAT_VALID_MINUTES); a run
# that died can only have sent its last heartbeat before we buried it, so this covers its whole afterlife.
MELTANO_STALE_WINDOW_SECONDS = 5 * 60 + 30


def buried_recently(
    engine: Engine, pipeline: str, within_seconds: float = MELTANO_STALE_WINDOW_SECONDS
) -> bool:
    """Did stale-run recovery (any flx process's) bury a run of `pipeline` lately?

    Then Meltano still holds that run as RUNNING under the same state ID and refuses the next `meltano run`
    of the job, whichever worker or scheduler starts it, until its own 5-minute staleness rule passes.
    """
    with Session(engine) as session:
        found = session.execute(
            select(ExecutionEvent.id)
            .join(Execution, Execution.id == ExecutionEvent.execution_id)
            .join(Pipeline, Pipeline.id == Execution.pipeline_id)
            .where(
                Pipeline.name == pipeline,
                ExecutionEvent.payload["reason"].astext == "stale_heartbeat",
                ExecutionEvent.at > func.now() - func.make_interval(0, 0, 0, 0, 0, 0, within_seconds),
            )
            .limit(1)
        ).first()
    return found is not None


_SESSIONS = table("pg_stat_activity", column("pid"), schema="pg_catalog")


def _older_than(seconds: float) -> ColumnElement[bool]:
    last_sign = func.coalesce(Execution.heartbeat_at, Execution.created_at)
    return last_sign < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, seconds)


def _age_seconds() -> ColumnElement[Any]:
    return func.extract("epoch", func.now() - func.coalesce(Execution.heartbeat_at, Execution.created_at))


def _runner_died_here(pid: int | None) -> bool:
    """A run recorded on this machine whose runner (not this process) is no longer alive."""
    return pid is not None and pid != os.getpid() and not pid_alive(pid)


def wait_for_dead_local_runner(engine: Engine, pipeline: str, runner_gone_after_seconds: float) -> float:
    """Seconds until an active run of `pipeline` whose runner died on this machine can be buried (0: none).

    Such a run is buried only once its heartbeat is `runner_gone_after_seconds` old (a runner in another
    container of this machine is invisible to us but keeps heartbeating); a run started right after a
    runner was killed waits that out instead of being refused.
    """
    here = host_identity()
    with Session(engine) as session:
        rows = session.execute(
            select(Execution.pid, _age_seconds())
            .join(Pipeline, Pipeline.id == Execution.pipeline_id)
            .where(Pipeline.name == pipeline, Execution.status.in_(_ACTIVE), Execution.process_host == here)
        ).all()
    waits = [runner_gone_after_seconds - float(age) for pid, age in rows if _runner_died_here(pid)]
    return max([0.0, *waits])


@dataclass(frozen=True)
class _Windows:
    """How old a heartbeat must be before its run is buried, by what else is known of its runner."""

    stale: float
    session_gone: float | None
    runner_gone: float | None

    @property
    def shortest(self) -> float:
        return min(w for w in (self.stale, self.session_gone, self.runner_gone) if w is not None)

    def gone(self, age: float, lock_gone: bool, runner_dead: bool) -> bool:
        return (
            age > self.stale
            or (lock_gone and self.session_gone is not None and age > self.session_gone)
            or (runner_dead and self.runner_gone is not None and age > self.runner_gone)
        )


def recover_stale(
    engine: Engine,
    stale_after_seconds: float,
    session_gone_after_seconds: float | None = None,
    *,
    runner_gone_after_seconds: float | None = None,
    kill_grace_seconds: float = 10.0,
) -> list[StaleExecution]:
    """Mark active executions whose runner is gone as failed, after ending their job here; return them.

    Gone means (see the module): no heartbeat for `stale_after_seconds`; or the database session that held
    the pipeline lock has ended and the heartbeat is `session_gone_after_seconds` old; or, on this machine,
    the runner's process is dead and the heartbeat is `runner_gone_after_seconds` old.
    """
    windows = _Windows(stale_after_seconds, session_gone_after_seconds, runner_gone_after_seconds)
    session_gone = and_(
        Execution.lock_session.is_not(None),
        Execution.lock_session.not_in(select(_SESSIONS.c.pid).scalar_subquery()),
    )
    here = host_identity()
    recovered: list[StaleExecution] = []
    with Session(engine) as session, session.begin():
        rows = session.execute(
            select(Execution, Pipeline.name, _age_seconds(), session_gone)
            .join(Pipeline, Pipeline.id == Execution.pipeline_id)
            .where(Execution.status.in_(_ACTIVE), _older_than(windows.shortest))
            .with_for_update(of=Execution, skip_locked=True)
        ).all()
        for execution, pipeline, age_seconds, lock_gone in rows:
            local = execution.process_host == here
            runner_dead = local and _runner_died_here(execution.pid)
            if not windows.gone(float(age_seconds), bool(lock_gone), runner_dead):
                continue
            ended = _end_leftovers(execution, kill_grace_seconds) if local else ""
            if ended is None:
                continue
            _bury(session, execution, ended)
            recovered.append(
                StaleExecution(
                    execution.id,
                    pipeline,
                    execution.execution_number,
                    execution.heartbeat_at,
                    execution.hostname,
                    execution.pid,
                )
            )
    return recovered


def _end_leftovers(execution: Execution, kill_grace_seconds: float) -> str | None:
    """End what the run's job left on this machine: what to add to the reason, or None if it would not end
    (the run is not buried then: its job might still write)."""
    if not execution.process_group:
        return ""
    left = job_processes(execution.process_group, str(execution.id)) or []
    if not end_job(execution.process_group, str(execution.id), kill_grace_seconds):
        log.warning(
            "execution %s: its job's processes (group %s) would not end; not marked failed yet",
            execution.id,
            execution.process_group,
        )
        return None
    return f"; {len(left)} process(es) its job left behind were ended" if left else ""


def _bury(session: Session, execution: Execution, ended: str) -> None:
    """Mark the run failed, with an event that keeps the status it had and why."""
    previous_status = execution.status
    reason = (
        f"heartbeat stopped at {execution.heartbeat_at:%Y-%m-%d %H:%M:%S%z} "
        f"(runner pid {execution.pid} on {execution.hostname} died or lost the database); "
        f"marked failed by stale-run recovery{ended}"
        if execution.heartbeat_at
        else f"never sent a heartbeat; marked failed by stale-run recovery{ended}"
    )
    session.execute(
        update(Execution)
        .where(Execution.id == execution.id)
        .values(status=ExecutionStatus.FAILED.value, ended_at=func.now(), error=reason, updated_at=func.now())
        .execution_options(synchronize_session=False)
    )
    append_event(
        session,
        execution.id,
        ExecutionStatus.FAILED.value,
        {"reason": "stale_heartbeat", "previous_status": previous_status, "error": reason},
    )
