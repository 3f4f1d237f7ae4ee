"""Reading execution history back: the rows `flx history` and `flx show` print.

Plain SQL on a psycopg connection: neither SQLAlchemy nor the models are loaded for reading, which keeps
these commands quick to start.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql


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


Connection = psycopg.Connection[Any]

_COLUMNS = (
    "e.id, p.name, e.execution_number, e.trigger, e.status, e.attempt, e.exit_code, e.started_at, "
    "e.ended_at, e.duration_seconds, e.error"
)
_FROM = "FROM {schema}.executions e JOIN {schema}.pipelines p ON p.id = e.pipeline_id"


def _query(text: str, schema: str) -> sql.Composed:
    return sql.SQL(text).format(schema=sql.Identifier(schema))


def recent_executions(
    conn: Connection, schema: str, pipeline: str | None = None, limit: int = 20
) -> list[ExecutionRow]:
    """Newest first (by creation, so pending and skipped runs without a start time still sort right)."""
    where = "WHERE p.name = %(pipeline)s" if pipeline is not None else ""
    query = _query(
        f"SELECT {_COLUMNS} {_FROM} {where} ORDER BY e.created_at DESC, e.execution_number DESC "
        "LIMIT %(limit)s",
        schema,
    )
    return [ExecutionRow(*row) for row in conn.execute(query, {"pipeline": pipeline, "limit": limit})]


def pipeline_names(conn: Connection, schema: str) -> list[str]:
    """Every pipeline the control schema knows, by name."""
    return [
        name for (name,) in conn.execute(_query("SELECT name FROM {schema}.pipelines ORDER BY name", schema))
    ]


class ExecutionNotFound(LookupError):
    pass


def find_execution(conn: Connection, schema: str, ref: str, extra: str = "") -> tuple[Any, ...]:
    """The row of the one execution `ref` names: an id, a unique prefix of one, `pipeline#number`, or a
    pipeline's name (its newest execution). `extra` columns of `e` come after the `ExecutionRow` ones."""
    select = f"SELECT {_COLUMNS}{extra} {_FROM} "
    params: dict[str, Any]
    if "#" in ref:
        name, _, number = ref.rpartition("#")
        if not number.isdigit():
            raise ExecutionNotFound(f"{ref!r}: expected pipeline#number")
        query = _query(select + "WHERE p.name = %(name)s AND e.execution_number = %(number)s", schema)
        params = {"name": name, "number": int(number)}
        rows = conn.execute(query, params).fetchall()
    else:
        rows = _by_name_or_id(conn, schema, select, ref)
    if len(rows) != 1:
        what = "no execution" if not rows else "more than one execution"
        raise ExecutionNotFound(f"{what} matches {ref!r} (give an id, pipeline#number or a pipeline's name)")
    return tuple(rows[0])


def _by_name_or_id(conn: Connection, schema: str, select: str, ref: str) -> list[Any]:
    """A pipeline's newest execution or else the executions whose id starts with `ref`, in one statement
    (an id prefix is a range of the primary key, read from its index)."""
    newest = select + "WHERE p.name = %(name)s ORDER BY e.execution_number DESC LIMIT 1"
    bounds = _id_range(ref)
    if bounds is None:
        return conn.execute(_query(newest, schema), {"name": ref}).fetchall()
    by_id = select + "WHERE e.id BETWEEN %(low)s::uuid AND %(high)s::uuid LIMIT 2"
    query = f"SELECT 0, named.* FROM ({newest}) named UNION ALL SELECT 1, by_id.* FROM ({by_id}) by_id"
    params = {"name": ref, "low": bounds[0], "high": bounds[1]}
    rows = conn.execute(_query(query, schema), params).fetchall()
    named = [row[1:] for row in rows if row[0] == 0]
    return named or [row[1:] for row in rows]


def _id_range(ref: str) -> tuple[str, str] | None:
    """The lowest and highest id that start with `ref` (hex digits, dashes anywhere), or None."""
    digits = ref.lower().replace("-", "")
    if not digits or len(digits) > 32 or any(c not in "0123456789abcdef" for c in digits):
        return None
    return str(uuid.UUID(digits.ljust(32, "0"))), str(uuid.UUID(digits.ljust(32, "f")))


def execution_detail(conn: Connection, schema: str, ref: str) -> ExecutionDetail:
    """`ref` as `find_execution` takes it."""
    *columns, run_id, hostname, pid, log_tail = find_execution(
        conn, schema, ref, ", e.run_id, e.hostname, e.pid, e.log_tail"
    )
    row = ExecutionRow(*columns)
    by_execution = {"id": row.id}
    events = [
        EventRow(*event)
        for event in conn.execute(
            _query(
                "SELECT seq, at, type, payload FROM {schema}.execution_events WHERE execution_id = %(id)s "
                "ORDER BY seq",
                schema,
            ),
            by_execution,
        )
    ]
    loads = [
        LoadRow(*load)
        for load in conn.execute(
            _query(
                "SELECT stream, schema_name, table_name, load_method, rows_inserted, rows_updated, "
                "rows_deleted, status FROM {schema}.stream_loads WHERE execution_id = %(id)s "
                "ORDER BY started_at",
                schema,
            ),
            by_execution,
        )
    ]
    validations = [
        CheckRow(*check)
        for check in conn.execute(
            _query(
                "SELECT check_name, kind, status, observed, expected FROM {schema}.validation_results "
                "WHERE execution_id = %(id)s ORDER BY created_at",
                schema,
            ),
            by_execution,
        )
    ]
    return ExecutionDetail(row, run_id, hostname, pid, log_tail, events, loads, validations)
