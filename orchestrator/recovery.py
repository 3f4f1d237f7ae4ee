"""Executions whose runner died: heartbeat stopped, status still running. Marked failed, with the reason.

Without this, a machine that lost power leaves a run "running" forever (Meltano's own #9147). Every `flx`
start sweeps; the row lock and status guard make two sweepers, or a sweeper and a slow-but-alive runner,
agree on one outcome (the runner then gets a ConcurrencyError on its next status change).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, and_, column, func, or_, select, table, update
from sqlalchemy.orm import Session

from flx_core.models import Execution, ExecutionEvent, ExecutionStatus, Pipeline
from orchestrator.records import append_event

_ACTIVE = (ExecutionStatus.PENDING.value, ExecutionStatus.RUNNING.value, ExecutionStatus.RETRYING.value)


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


def recover_stale(
    engine: Engine, stale_after_seconds: float, session_gone_after_seconds: float | None = None
) -> list[StaleExecution]:
    """Mark active executions whose runner is gone as failed; return them.

    Gone means: no heartbeat for `stale_after_seconds`, or, sooner, the database session that held the
    pipeline lock has ended and the heartbeat is `session_gone_after_seconds` old (a crashed runner's
    session ends with it, on whatever machine it ran).
    """
    gone = or_(
        _older_than(stale_after_seconds),
        and_(
            Execution.lock_session.is_not(None),
            Execution.lock_session.not_in(select(_SESSIONS.c.pid).scalar_subquery()),
            _older_than(
                session_gone_after_seconds if session_gone_after_seconds is not None else stale_after_seconds
            ),
        ),
    )
    recovered: list[StaleExecution] = []
    with Session(engine) as session, session.begin():
        rows = session.execute(
            select(Execution, Pipeline.name)
            .join(Pipeline, Pipeline.id == Execution.pipeline_id)
            .where(Execution.status.in_(_ACTIVE), gone)
            .with_for_update(of=Execution, skip_locked=True)
        ).all()
        for execution, pipeline in rows:
            reason = (
                f"heartbeat stopped at {execution.heartbeat_at:%Y-%m-%d %H:%M:%S%z} "
                f"(runner pid {execution.pid} on {execution.hostname} died or lost the database); "
                f"marked failed by stale-run recovery"
                if execution.heartbeat_at
                else "never sent a heartbeat; marked failed by stale-run recovery"
            )
            session.execute(
                update(Execution)
                .where(Execution.id == execution.id)
                .values(
                    status=ExecutionStatus.FAILED.value,
                    ended_at=func.now(),
                    error=reason,
                    updated_at=func.now(),
                )
            )
            append_event(
                session,
                execution.id,
                ExecutionStatus.FAILED.value,
                {"reason": "stale_heartbeat", "previous_status": execution.status, "error": reason},
            )
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
