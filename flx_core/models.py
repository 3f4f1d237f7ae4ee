"""The control schema `flx`: what pipelines exist, what ran, what was loaded, checked and alerted.

Tables are declared in schema "flx"; engines from `flx_core.database.make_engine` translate that name to
the configured `control_schema`. Every table has a UUID key and `created_at`/`updated_at`, which tap-flx
uses as its replication key.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flx_core.statuses import ExecutionStatus

SCHEMA = "flx"

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _now() -> Any:
    return func.now()


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA, naming_convention=NAMING)
    type_annotation_map = {
        dict[str, Any]: JSONB,
        datetime: DateTime(timezone=True),
        uuid.UUID: UUID(as_uuid=True),
        Decimal: Numeric,
    }


class Timestamped:
    """`updated_at` is maintained by the ORM and, for raw SQL writers, by a trigger (see the migration)."""

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=uuid.uuid4, server_default=func.gen_random_uuid()
    )
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(server_default=_now(), onupdate=_now(), index=True)


class Pipeline(Timestamped, Base):
    __tablename__ = "pipelines"

    name: Mapped[str] = mapped_column(Text, unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    schedule: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(Text, server_default="UTC")
    max_concurrent_executions: Mapped[int] = mapped_column(Integer, server_default="1")
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    retry_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    retry_delay_seconds: Mapped[int] = mapped_column(Integer, server_default="30")
    is_active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    config: Mapped[dict[str, Any]] = mapped_column(server_default="{}")


class PipelineStep(Timestamped, Base):
    __tablename__ = "pipeline_steps"
    __table_args__ = (UniqueConstraint("pipeline_id", "position"),)

    pipeline_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    block: Mapped[str] = mapped_column(Text)
    plugin_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("plugins.id", ondelete="SET NULL"))


class Plugin(Timestamped, Base):
    __tablename__ = "plugins"
    __table_args__ = (UniqueConstraint("type", "name"),)

    name: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(Text)
    namespace: Mapped[str | None] = mapped_column(Text)
    variant: Mapped[str | None] = mapped_column(Text)
    pip_url: Mapped[str | None] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(server_default="{}")


class Execution(Timestamped, Base):
    __tablename__ = "executions"
    __table_args__ = (
        UniqueConstraint("pipeline_id", "execution_number"),
        Index("ix_executions_status_heartbeat", "status", "heartbeat_at"),
        # newest-first pages over all runs, one pipeline's runs, and one status's (flx ui, flx history)
        Index("ix_executions_created_at_id", "created_at", "id"),
        Index("ix_executions_pipeline_id_created_at_id", "pipeline_id", "created_at", "id"),
        Index("ix_executions_status_created_at", "status", "created_at", postgresql_include=["pipeline_id"]),
    )

    pipeline_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    execution_number: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(Text, server_default="manual")
    status: Mapped[str] = mapped_column(Text, server_default=ExecutionStatus.PENDING.value)
    attempt: Mapped[int] = mapped_column(Integer, server_default="1")
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    duration_seconds: Mapped[Decimal | None] = mapped_column(Numeric(14, 3))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    log_tail: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    hostname: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)
    # backend pid of the session holding the pipeline lock: gone from pg_stat_activity = the runner died
    lock_session: Mapped[int | None] = mapped_column(Integer)
    # the job's process group and the machine (hostname/boot id) it runs on: what to end if the runner died
    process_group: Mapped[int | None] = mapped_column(Integer)
    process_host: Mapped[str | None] = mapped_column(Text)
    # `flx cancel` (or the UI) from any machine: the runner reads it with its next heartbeat and stops the job
    cancel_requested_at: Mapped[datetime | None]
    cancel_requested_by: Mapped[str | None] = mapped_column(Text)


class ExecutionEvent(Timestamped, Base):
    """Append-only; `seq` is unique per execution, so two writers cannot both record event N."""

    __tablename__ = "execution_events"
    __table_args__ = (UniqueConstraint("execution_id", "seq"),)

    execution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    at: Mapped[datetime] = mapped_column(server_default=_now(), index=True)


class ExecutionLog(Base):
    """One zlib-compressed chunk of an execution's output: lines `first_line` … `first_line + line_count - 1`.

    Written every second while the job runs (so `flx logs --follow` and the UI can show it live, from any
    machine) and merged into one chunk per attempt when it ends. Bulk, not history: no UUID key or
    `updated_at`, not exported by tap-flx, expired after `log_retention_days`.
    """

    __tablename__ = "execution_logs"
    __table_args__ = (UniqueConstraint("execution_id", "first_line"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    execution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    first_line: Mapped[int] = mapped_column(BigInteger)
    line_count: Mapped[int] = mapped_column(Integer)
    raw_bytes: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(server_default=_now(), index=True)


class StreamLoad(Timestamped, Base):
    __tablename__ = "stream_loads"

    execution_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("executions.id", ondelete="SET NULL"), index=True
    )
    run_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    stream: Mapped[str] = mapped_column(Text)
    schema_name: Mapped[str] = mapped_column(Text)
    table_name: Mapped[str] = mapped_column(Text)
    load_method: Mapped[str | None] = mapped_column(Text)
    rows_inserted: Mapped[int] = mapped_column(BigInteger, server_default="0")
    rows_updated: Mapped[int] = mapped_column(BigInteger, server_default="0")
    rows_deleted: Mapped[int] = mapped_column(BigInteger, server_default="0")
    rows_quarantined: Mapped[int] = mapped_column(BigInteger, server_default="0")
    batches: Mapped[int] = mapped_column(Integer, server_default="0")
    bytes: Mapped[int] = mapped_column(BigInteger, server_default="0")
    started_at: Mapped[datetime] = mapped_column(server_default=_now())
    ended_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(Text, server_default="running")
    error: Mapped[str | None] = mapped_column(Text)


class ValidationResult(Timestamped, Base):
    __tablename__ = "validation_results"

    execution_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    check_name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    observed: Mapped[str | None] = mapped_column(Text)
    expected: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(server_default="{}")


class Alert(Timestamped, Base):
    __tablename__ = "alerts"

    fingerprint: Mapped[str] = mapped_column(Text, unique=True)
    pipeline_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("pipelines.id", ondelete="SET NULL"))
    check_name: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(server_default=_now())
    last_sent_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    send_count: Mapped[int] = mapped_column(Integer, server_default="0")
    last_message: Mapped[str | None] = mapped_column(Text)


class QuarantinedRecord(Timestamped, Base):
    """An input line target-flx refused under `on_invalid_record: quarantine`, kept verbatim."""

    __tablename__ = "quarantine"

    execution_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("executions.id", ondelete="SET NULL"), index=True
    )
    run_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    stream: Mapped[str | None] = mapped_column(Text)
    line_number: Mapped[int] = mapped_column(BigInteger)
    field: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    raw_line: Mapped[str] = mapped_column(Text)


class ScheduleTick(Timestamped, Base):
    """One scheduled run time of a pipeline; the unique `key` makes every scheduler agree who runs it."""

    __tablename__ = "schedule_ticks"
    __table_args__ = (Index("ix_schedule_ticks_pipeline_id_tick_at", "pipeline_id", "tick_at"),)

    pipeline_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    tick_at: Mapped[datetime]
    key: Mapped[str] = mapped_column(Text, unique=True)
    status: Mapped[str] = mapped_column(Text)
    execution_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("executions.id", ondelete="SET NULL"))
    detail: Mapped[str | None] = mapped_column(Text)
