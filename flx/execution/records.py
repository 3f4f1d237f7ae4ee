"""Writing executions and their event log: every status change is one row in `execution_events`.

Status changes are optimistic: an update names the status it expects to replace, so a runner whose
execution was meanwhile marked failed by stale-heartbeat recovery (or by anyone else) learns it at once
instead of silently overwriting history. Writes wait out a database restart (`DatabaseRetry`); a status
change retried after a lost commit recognises its own earlier success.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flx.config import PipelineSettings
from flx.execution.dbretry import DatabaseRetry
from flx.execution.proctree import host_identity
from flx.project_plugins import PluginInfo, block_plugin
from flx_core.models import Execution, ExecutionEvent, ExecutionStatus, Pipeline, PipelineStep, Plugin

_NO_RETRY = DatabaseRetry(deadline_seconds=0)


class ConcurrencyError(RuntimeError):
    """Somebody else changed this execution first; our view of it is stale."""


def sync_pipeline(
    engine: Engine,
    settings: PipelineSettings,
    retry: DatabaseRetry = _NO_RETRY,
    blocks: Sequence[str] = (),
    plugins: Sequence[PluginInfo] = (),
) -> uuid.UUID:
    """Upsert the pipeline row from settings, so history and schedules show the configuration that ran;
    with it the project's plugins and the pipeline's steps (its blocks, in order)."""
    values: dict[str, Any] = {
        "name": settings.name,
        "description": settings.description,
        "schedule": settings.schedule,
        "timezone": settings.timezone,
        "max_concurrent_executions": settings.max_concurrent_executions,
        "timeout_seconds": int(settings.timeout_seconds) if settings.timeout_seconds else None,
        "retry_attempts": settings.retries,
        "retry_delay_seconds": int(settings.retry_delay_seconds),
        "config": settings.model_dump(mode="json", exclude={"name"}),
    }
    insert = pg_insert(Pipeline).values(**values)
    upsert = insert.on_conflict_do_update(
        index_elements=[Pipeline.name],
        set_={k: insert.excluded[k] for k in values if k != "name"} | {"updated_at": func.now()},
    ).returning(Pipeline.id)

    def write(_retrying: bool) -> uuid.UUID:
        with engine.begin() as conn:
            pipeline_id: uuid.UUID = conn.execute(upsert).scalar_one()
            if plugins or blocks:
                _sync_steps(conn, pipeline_id, blocks, _sync_plugins(conn, plugins))
            return pipeline_id

    return retry.call(write, f"pipeline {settings.name!r}")


def _sync_plugins(conn: Connection, plugins: Sequence[PluginInfo]) -> dict[str, uuid.UUID]:
    """Upsert the project's plugins (a row changes only when the plugin did); ids by name."""
    if plugins:
        rows = [plugin.row() for plugin in plugins]
        insert = pg_insert(Plugin).values(rows)
        changing = ("namespace", "variant", "pip_url", "config")
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[Plugin.type, Plugin.name],
                set_={k: insert.excluded[k] for k in changing} | {"updated_at": func.now()},
                where=tuple_(*(getattr(Plugin, k) for k in changing)).is_distinct_from(
                    tuple_(*(insert.excluded[k] for k in changing))
                ),
            )
        )
    names = [plugin.name for plugin in plugins]
    found = conn.execute(select(Plugin.name, Plugin.id).where(Plugin.name.in_(names))).all()
    return {name: plugin_id for name, plugin_id in found}


def _sync_steps(
    conn: Connection, pipeline_id: uuid.UUID, blocks: Sequence[str], plugin_ids: dict[str, uuid.UUID]
) -> None:
    """The pipeline's blocks as its steps, rewritten only when they changed."""
    wanted = [
        (position, block, plugin_ids.get(block_plugin(block))) for position, block in enumerate(blocks, 1)
    ]
    have = conn.execute(
        select(PipelineStep.position, PipelineStep.block, PipelineStep.plugin_id)
        .where(PipelineStep.pipeline_id == pipeline_id)
        .order_by(PipelineStep.position)
    ).all()
    if [tuple(row) for row in have] == wanted:
        return
    conn.execute(delete(PipelineStep).where(PipelineStep.pipeline_id == pipeline_id))
    if wanted:
        conn.execute(
            insert(PipelineStep),
            [
                {"pipeline_id": pipeline_id, "position": p, "block": b, "plugin_id": plugin}
                for p, b, plugin in wanted
            ],
        )


class ExecutionRecord:
    """One execution's row and event log, written by the process running it."""

    def __init__(
        self,
        engine: Engine,
        execution_id: uuid.UUID,
        status: ExecutionStatus,
        retry: DatabaseRetry = _NO_RETRY,
        number: int | None = None,
    ) -> None:
        self.engine = engine
        self.id = execution_id
        self.status = status
        self.retry = retry
        self.number = number

    @classmethod
    def create(
        cls,
        engine: Engine,
        pipeline_id: uuid.UUID,
        trigger: str,
        lock_session: int | None = None,
        retry: DatabaseRetry = _NO_RETRY,
    ) -> ExecutionRecord:
        """A new pending execution numbered after the pipeline's last one (retried if two race)."""
        return retry.call(
            lambda _: cls._create(engine, pipeline_id, trigger, lock_session, retry), "a new execution"
        )

    @classmethod
    def _create(
        cls,
        engine: Engine,
        pipeline_id: uuid.UUID,
        trigger: str,
        lock_session: int | None,
        retry: DatabaseRetry,
    ) -> ExecutionRecord:
        for _ in range(5):
            try:
                with Session(engine) as session, session.begin():
                    number = (
                        session.scalar(
                            select(func.coalesce(func.max(Execution.execution_number), 0)).where(
                                Execution.pipeline_id == pipeline_id
                            )
                        )
                        or 0
                    ) + 1
                    execution = Execution(
                        pipeline_id=pipeline_id,
                        execution_number=number,
                        trigger=trigger,
                        status=ExecutionStatus.PENDING.value,
                        hostname=socket.gethostname(),
                        pid=os.getpid(),
                        lock_session=lock_session,
                        process_host=host_identity(),
                        heartbeat_at=datetime.now(UTC),
                    )
                    session.add(execution)
                    session.flush()
                    append_event(session, execution.id, "pending", {"trigger": trigger})
                    return cls(engine, execution.id, ExecutionStatus.PENDING, retry, number)
            except IntegrityError:
                continue
        raise ConcurrencyError("could not number a new execution: too many concurrent starts")

    def transition(self, status: ExecutionStatus, **fields: Any) -> None:
        """Move to `status`, writing the event and the row together; fails if the row moved under us."""
        payload = {k: _jsonable(v) for k, v in fields.items() if v is not None and k != "log_tail"}

        def write(retrying: bool) -> None:
            with Session(self.engine) as session, session.begin():
                changed = session.execute(
                    update(Execution)
                    .where(Execution.id == self.id, Execution.status == self.status.value)
                    .values(status=status.value, updated_at=func.now(), **fields)
                ).rowcount  # type: ignore[attr-defined]
                if changed == 1:
                    append_event(session, self.id, status.value, payload)
                    return
                current = session.scalar(select(Execution.status).where(Execution.id == self.id))
                if retrying and current == status.value and self._last_event() == status.value:
                    return  # the attempt that lost its connection had committed after all
                raise ConcurrencyError(
                    f"execution {self.id} is {current}, not {self.status.value}: "
                    f"another process changed it, so this one does not record {status.value}"
                )

        self.retry.call(write, f"{status.value!r} for execution {self.id}")
        self.status = status

    def event(self, type_: str, payload: dict[str, Any] | None = None) -> None:
        """An event that is not a status change (a retry scheduled, a check result, a signal)."""

        def write(_retrying: bool) -> None:
            with Session(self.engine) as session, session.begin():
                append_event(session, self.id, type_, payload or {})

        self.retry.call(write, f"event {type_!r} of execution {self.id}")

    def _last_event(self) -> str | None:
        with Session(self.engine) as session:
            return session.scalar(
                select(ExecutionEvent.type)
                .where(ExecutionEvent.execution_id == self.id)
                .order_by(ExecutionEvent.seq.desc())
                .limit(1)
            )

    def heartbeat(self) -> bool:
        """Touch `heartbeat_at`; False when the execution is no longer ours (marked final elsewhere)."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(Execution)
                .where(Execution.id == self.id, Execution.status == self.status.value)
                .values(heartbeat_at=func.now())
            ).rowcount
        return changed == 1


def append_event(session: Session, execution_id: uuid.UUID, type_: str, payload: dict[str, Any]) -> None:
    """Next seq for this execution; the unique (execution_id, seq) turns a lost race into a clear error."""
    seq = (
        session.scalar(
            select(func.coalesce(func.max(ExecutionEvent.seq), 0)).where(
                ExecutionEvent.execution_id == execution_id
            )
        )
        or 0
    ) + 1
    try:
        with session.begin_nested():
            session.execute(
                insert(ExecutionEvent).values(execution_id=execution_id, seq=seq, type=type_, payload=payload)
            )
    except IntegrityError:
        raise ConcurrencyError(
            f"execution {execution_id}: event {seq} was written by another process at the same time"
        ) from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    return value
