"""Reading execution history back: the rows `flx history` and `flx show` print."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, String, cast, select
from sqlalchemy.orm import Session

from flx_core.models import Execution, ExecutionEvent, Pipeline, StreamLoad, ValidationResult


@dataclass(frozen=True)
class ExecutionRow:
    id: uuid.UUID
    pipeline: str
    execution_number: int
    trigger: str
    status: str
    attempt: int
    exit_code: int | None
    started_at: datetime | None
    ended_at: datetime | None
    duration_seconds: Decimal | None
    error: str | None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["id"] = str(self.id)
        data["started_at"] = self.started_at.isoformat() if self.started_at else None
        data["ended_at"] = self.ended_at.isoformat() if self.ended_at else None
        data["duration_seconds"] = float(self.duration_seconds) if self.duration_seconds is not None else None
        return data


@dataclass(frozen=True)
class ExecutionDetail:
    execution: ExecutionRow
    run_id: uuid.UUID | None
    hostname: str | None
    pid: int | None
    log_tail: str | None
    events: list[ExecutionEvent]
    loads: list[StreamLoad]
    validations: list[ValidationResult]


_COLUMNS = (
    Execution.id,
    Pipeline.name,
    Execution.execution_number,
    Execution.trigger,
    Execution.status,
    Execution.attempt,
    Execution.exit_code,
    Execution.started_at,
    Execution.ended_at,
    Execution.duration_seconds,
    Execution.error,
)


def recent_executions(engine: Engine, pipeline: str | None = None, limit: int = 20) -> list[ExecutionRow]:
    """Newest first (by creation, so pending and skipped runs without a start time still sort right)."""
    query = (
        select(*_COLUMNS)
        .join(Pipeline, Pipeline.id == Execution.pipeline_id)
        .order_by(Execution.created_at.desc(), Execution.execution_number.desc())
        .limit(limit)
    )
    if pipeline is not None:
        query = query.where(Pipeline.name == pipeline)
    with Session(engine) as session:
        return [ExecutionRow(*row) for row in session.execute(query)]


def pipeline_names(engine: Engine) -> list[str]:
    """Every pipeline the control schema knows, by name."""
    with Session(engine) as session:
        return list(session.scalars(select(Pipeline.name).order_by(Pipeline.name)))


class ExecutionNotFound(LookupError):
    pass


def execution_detail(engine: Engine, ref: str) -> ExecutionDetail:
    """`ref` is an execution id, a unique prefix of one, or `pipeline#number`."""
    with Session(engine) as session:
        query = select(
            *_COLUMNS, Execution.run_id, Execution.hostname, Execution.pid, Execution.log_tail
        ).join(Pipeline, Pipeline.id == Execution.pipeline_id)
        if "#" in ref:
            name, _, number = ref.rpartition("#")
            if not number.isdigit():
                raise ExecutionNotFound(f"{ref!r}: expected pipeline#number")
            query = query.where(Pipeline.name == name, Execution.execution_number == int(number))
        else:
            query = query.where(cast(Execution.id, String).startswith(ref.lower())).limit(2)
        rows = session.execute(query).all()
        if len(rows) != 1:
            what = "no execution" if not rows else "more than one execution"
            raise ExecutionNotFound(f"{what} matches {ref!r}")
        *columns, run_id, hostname, pid, log_tail = rows[0]
        row = ExecutionRow(*columns)
        events = list(
            session.scalars(
                select(ExecutionEvent)
                .where(ExecutionEvent.execution_id == row.id)
                .order_by(ExecutionEvent.seq)
            )
        )
        loads = list(
            session.scalars(
                select(StreamLoad).where(StreamLoad.execution_id == row.id).order_by(StreamLoad.started_at)
            )
        )
        validations = list(
            session.scalars(
                select(ValidationResult)
                .where(ValidationResult.execution_id == row.id)
                .order_by(ValidationResult.created_at)
            )
        )
        session.expunge_all()
        return ExecutionDetail(row, run_id, hostname, pid, log_tail, events, loads, validations)
