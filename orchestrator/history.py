"""Reading execution history back: the rows `flx history` and `flx show` print.

Plain SQL through SQLAlchemy Core: the ORM and the models are not loaded for reading, which keeps these
commands quick to start.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, text


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
class EventRow:
    seq: int
    at: datetime
    type: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class LoadRow:
    stream: str
    schema_name: str
    table_name: str
    load_method: str | None
    rows_inserted: int
    rows_updated: int
    rows_deleted: int
    status: str


@dataclass(frozen=True)
class CheckRow:
    check_name: str
    kind: str
    status: str
    observed: str | None
    expected: str | None


@dataclass(frozen=True)
class ExecutionDetail:
    execution: ExecutionRow
    run_id: uuid.UUID | None
    hostname: str | None
    pid: int | None
    log_tail: str | None
    events: list[EventRow]
    loads: list[LoadRow]
    validations: list[CheckRow]


_COLUMNS = (
    "e.id, p.name, e.execution_number, e.trigger, e.status, e.attempt, e.exit_code, e.started_at, "
    "e.ended_at, e.duration_seconds, e.error"
)


def _schema(engine: Engine | Connection) -> str:
    """The control schema this engine reads: `make_engine` maps the models' `flx` to it."""
    translate = engine.get_execution_options().get("schema_translate_map") or {}
    return str(translate.get("flx", "flx")).replace('"', '""')


def recent_executions(engine: Engine, pipeline: str | None = None, limit: int = 20) -> list[ExecutionRow]:
    """Newest first (by creation, so pending and skipped runs without a start time still sort right)."""
    schema = _schema(engine)
    where = "WHERE p.name = :pipeline" if pipeline is not None else ""
    query = text(
        f'SELECT {_COLUMNS} FROM "{schema}".executions e JOIN "{schema}".pipelines p ON p.id = e.pipeline_id '
        f"{where} ORDER BY e.created_at DESC, e.execution_number DESC LIMIT :limit"
    )
    with engine.connect() as conn:
        rows = conn.execute(query, {"pipeline": pipeline, "limit": limit})
        return [ExecutionRow(*row) for row in rows]


def pipeline_names(engine: Engine) -> list[str]:
    """Every pipeline the control schema knows, by name."""
    with engine.connect() as conn:
        return list(conn.scalars(text(f'SELECT name FROM "{_schema(engine)}".pipelines ORDER BY name')))


class ExecutionNotFound(LookupError):
    pass


def execution_detail(engine: Engine, ref: str) -> ExecutionDetail:
    """`ref` is an execution id, a unique prefix of one, or `pipeline#number`."""
    schema = _schema(engine)
    select = (
        f"SELECT {_COLUMNS}, e.run_id, e.hostname, e.pid, e.log_tail "
        f'FROM "{schema}".executions e JOIN "{schema}".pipelines p ON p.id = e.pipeline_id '
    )
    if "#" in ref:
        name, _, number = ref.rpartition("#")
        if not number.isdigit():
            raise ExecutionNotFound(f"{ref!r}: expected pipeline#number")
        query = text(select + "WHERE p.name = :name AND e.execution_number = :number")
        params: dict[str, Any] = {"name": name, "number": int(number)}
    else:
        query = text(select + "WHERE e.id::text LIKE :prefix LIMIT 2")
        params = {"prefix": ref.lower().replace("%", "").replace("_", "") + "%"}
    with engine.connect() as conn:
        rows = conn.execute(query, params).all()
        if len(rows) != 1:
            what = "no execution" if not rows else "more than one execution"
            raise ExecutionNotFound(f"{what} matches {ref!r}")
        *columns, run_id, hostname, pid, log_tail = rows[0]
        row = ExecutionRow(*columns)
        by_execution = {"id": row.id}
        events = [
            EventRow(*event)
            for event in conn.execute(
                text(
                    f'SELECT seq, at, type, payload FROM "{schema}".execution_events '
                    "WHERE execution_id = :id ORDER BY seq"
                ),
                by_execution,
            )
        ]
        loads = [
            LoadRow(*load)
            for load in conn.execute(
                text(
                    "SELECT stream, schema_name, table_name, load_method, rows_inserted, rows_updated, "
                    f'rows_deleted, status FROM "{schema}".stream_loads WHERE execution_id = :id '
                    "ORDER BY started_at"
                ),
                by_execution,
            )
        ]
        validations = [
            CheckRow(*check)
            for check in conn.execute(
                text(
                    f'SELECT check_name, kind, status, observed, expected FROM "{schema}".validation_results '
                    "WHERE execution_id = :id ORDER BY created_at"
                ),
                by_execution,
            )
        ]
    return ExecutionDetail(row, run_id, hostname, pid, log_tail, events, loads, validations)
