"""What the pages read from the control schema, through the models' tables (SQLAlchemy Core).

The engines `flx_core.database.make_engine` builds translate the models' `flx` schema to the configured
control schema, so these queries read whichever schema the settings name. Each query is shaped for an index
so pages stay quick with a long history: the newest run of a pipeline and its recent runs walk the unique
(pipeline_id, execution_number) index backwards; the run list pages by (created_at, id) keyset, never
OFFSET; a run's events, loads and checks are found by execution id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    case,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
)

from flx.execution.logchunks import Chunk, lines_after
from flx_core.models import (
    Alert,
    Execution,
    ExecutionEvent,
    ExecutionLog,
    Pipeline,
    StreamLoad,
    ValidationResult,
)
from flx_core.statuses import ACTIVE, ExecutionStatus

E = Execution.__table__
P = Pipeline.__table__
EV = ExecutionEvent.__table__
SL = StreamLoad.__table__
V = ValidationResult.__table__
A = Alert.__table__

FAILURES = ("failed", "failed_validation", "timed_out")
STATUSES = tuple(s.value for s in ExecutionStatus)
# Status groups the run filter offers besides single statuses.
STATUS_GROUPS = {"active": ACTIVE, "failures": FAILURES}
RECENT_RUNS = 30
COUNT_LIMIT = 10_000
DURATION_POINTS = 2000
STATS_DAYS = 30


def control_schema(conn: Connection) -> str:
    """The real name of the control schema this connection reads (the models say `flx`)."""
    translate = conn.get_execution_options().get("schema_translate_map") or {}
    return str(translate.get("flx", "flx"))


def _float(value: Decimal | float | None) -> float | None:
    return float(value) if value is not None else None


@dataclass(frozen=True)
class RecentRun:
    id: uuid.UUID
    number: int
    status: str
    created_at: datetime
    duration: float | None


@dataclass
class PipelineSummary:
    name: str
    id: uuid.UUID | None = None
    description: str | None = None
    schedule: str | None = None
    timezone: str = "UTC"
    is_active: bool = True
    last: RecentRun | None = None
    last_started_at: datetime | None = None
    runs_30d: int = 0
    finished_30d: int = 0
    succeeded_30d: int = 0
    median_30d: float | None = None
    recent: list[RecentRun] = field(default_factory=list)
    next_run: datetime | None = None
    schedule_error: str | None = None

    @property
    def success_rate(self) -> float | None:
        return self.succeeded_30d / self.finished_30d if self.finished_30d else None


def pipelines(conn: Connection, now: datetime) -> list[PipelineSummary]:
    """Every pipeline with history: its last run, 30 days' success rate and median, its recent runs."""
    last = (
        select(
            E.c.id,
            E.c.execution_number,
            E.c.status,
            E.c.created_at,
            E.c.started_at,
            E.c.duration_seconds,
        )
        .where(E.c.pipeline_id == P.c.id)
        .order_by(E.c.execution_number.desc())
        .limit(1)
        .lateral("last")
    )
    rows = conn.execute(
        select(
            P.c.id,
            P.c.name,
            P.c.description,
            P.c.schedule,
            P.c.timezone,
            P.c.is_active,
            last.c.id.label("last_id"),
            last.c.execution_number,
            last.c.status,
            last.c.created_at,
            last.c.started_at,
            last.c.duration_seconds,
        )
        .select_from(P.outerjoin(last, true()))
        .order_by(P.c.name)
    ).all()
    found: dict[uuid.UUID, PipelineSummary] = {}
    for row in rows:
        summary = PipelineSummary(
            name=row.name,
            id=row.id,
            description=row.description,
            schedule=row.schedule,
            timezone=row.timezone or "UTC",
            is_active=row.is_active,
        )
        if row.last_id is not None:
            summary.last = RecentRun(
                row.last_id,
                row.execution_number,
                row.status,
                row.created_at,
                _float(row.duration_seconds),
            )
            summary.last_started_at = row.started_at
        found[row.id] = summary
    if found:
        _add_stats(conn, found, now - timedelta(days=STATS_DAYS))
        _add_recent(conn, found)
    return list(found.values())


def _add_stats(conn: Connection, found: dict[uuid.UUID, PipelineSummary], since: datetime) -> None:
    """Each pipeline's runs since `since`: how many, how many finished and succeeded, their median."""
    finished = E.c.status.in_(("succeeded", *FAILURES))
    for row in conn.execute(
        select(
            E.c.pipeline_id,
            func.count(),
            func.count().filter(finished),
            func.count().filter(E.c.status == "succeeded"),
            func.percentile_cont(0.5).within_group(E.c.duration_seconds).filter(E.c.status == "succeeded"),
        )
        .where(E.c.created_at >= since)
        .group_by(E.c.pipeline_id)
    ):
        if (stats := found.get(row[0])) is not None:
            stats.runs_30d, stats.finished_30d, stats.succeeded_30d = row[1], row[2], row[3]
            stats.median_30d = _float(row[4])


def _add_recent(conn: Connection, found: dict[uuid.UUID, PipelineSummary]) -> None:
    """Each pipeline's newest `RECENT_RUNS` runs, oldest first (the sparkline)."""
    recent = (
        select(E.c.id, E.c.execution_number, E.c.status, E.c.created_at, E.c.duration_seconds)
        .where(E.c.pipeline_id == P.c.id)
        .order_by(E.c.execution_number.desc())
        .limit(RECENT_RUNS)
        .lateral("recent")
    )
    for row in conn.execute(
        select(P.c.id, recent.c.id, recent.c.execution_number, recent.c.status, recent.c.created_at)
        .add_columns(recent.c.duration_seconds)
        .select_from(P.join(recent, true()))
    ):
        found[row[0]].recent.append(RecentRun(row[1], row[2], row[3], row[4], _float(row[5])))
    for summary in found.values():
        summary.recent.reverse()


@dataclass(frozen=True)
class RunFilter:
    pipeline: str | None = None
    status: str | None = None  # one status or a STATUS_GROUPS name
    since: datetime | None = None
    until: datetime | None = None

    @property
    def statuses(self) -> tuple[str, ...]:
        if not self.status:
            return ()
        return STATUS_GROUPS.get(self.status, (self.status,))


@dataclass(frozen=True)
class Cursor:
    """A position in the run list: the (created_at, id) of the row next to it."""

    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        return f"{self.created_at.isoformat()}_{self.id}"

    @classmethod
    def decode(cls, value: str) -> Cursor | None:
        at, _, key = value.rpartition("_")
        try:
            return cls(datetime.fromisoformat(at), uuid.UUID(key))
        except ValueError:
            return None


@dataclass(frozen=True)
class RunRow:
    id: uuid.UUID
    pipeline: str
    number: int
    trigger: str
    status: str
    attempt: int
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    duration: float | None
    exit_code: int | None
    error: str | None
    hostname: str | None

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.created_at, self.id)


@dataclass(frozen=True)
class RunsPage:
    rows: list[RunRow]
    total: int
    older: Cursor | None  # where the next (older) page starts, None on the last page
    newer: Cursor | None  # where the previous (newer) page ends, None on the first page
    unknown_pipeline: bool = False
    more: bool = False  # more than `total` runs match


_RUN_COLUMNS = (
    E.c.id,
    P.c.name,
    E.c.execution_number,
    E.c.trigger,
    E.c.status,
    E.c.attempt,
    E.c.created_at,
    E.c.started_at,
    E.c.ended_at,
    E.c.duration_seconds,
    E.c.exit_code,
    E.c.error,
    E.c.hostname,
)


def _run_row(row: Any) -> RunRow:
    values = list(row)
    values[9] = _float(values[9])
    return RunRow(*values)


def runs(
    conn: Connection, filters: RunFilter, before: Cursor | None, after: Cursor | None, limit: int = 50
) -> RunsPage:
    """A page of runs, newest first: older than `before`, or (going back up) newer than `after`."""
    conditions: list[Any] = []
    if filters.pipeline:
        pipeline_id = conn.scalar(select(P.c.id).where(P.c.name == filters.pipeline))
        if pipeline_id is None:
            return RunsPage([], 0, None, None, unknown_pipeline=True)
        conditions.append(E.c.pipeline_id == pipeline_id)
    if filters.statuses:
        conditions.append(E.c.status.in_(filters.statuses))
    if filters.since is not None:
        conditions.append(E.c.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(E.c.created_at < filters.until)
    key = tuple_(E.c.created_at, E.c.id)
    older: Cursor | None
    newer: Cursor | None
    query = select(*_RUN_COLUMNS).select_from(E.join(P, P.c.id == E.c.pipeline_id)).where(*conditions)
    if after is not None and before is None:
        page = conn.execute(
            query.where(key > tuple_(literal(after.created_at), literal(after.id)))
            .order_by(E.c.created_at, E.c.id)
            .limit(limit + 1)
        ).all()
        more_newer = len(page) > limit
        rows = [_run_row(r) for r in reversed(page[:limit])]
        older = rows[-1].cursor if rows else after
        newer = rows[0].cursor if rows and more_newer else None
    else:
        if before is not None:
            query = query.where(key < tuple_(literal(before.created_at), literal(before.id)))
        page = conn.execute(query.order_by(E.c.created_at.desc(), E.c.id.desc()).limit(limit + 1)).all()
        rows = [_run_row(r) for r in page[:limit]]
        older = rows[-1].cursor if len(page) > limit else None
        newer = rows[0].cursor if before is not None and rows else None
    # Counting stops at COUNT_LIMIT: beyond it the page says "10,000+" instead of reading every row.
    matching = select(literal(1)).select_from(E).where(*conditions).limit(COUNT_LIMIT + 1).subquery()
    total = conn.scalar(select(func.count()).select_from(matching)) or 0
    return RunsPage(rows, min(total, COUNT_LIMIT), older, newer, more=total > COUNT_LIMIT)


@dataclass(frozen=True)
class EventRow:
    seq: int
    at: datetime
    type: str
    payload: dict[str, Any]
    offset: float  # seconds since the run's first event


@dataclass(frozen=True)
class LoadRow:
    stream: str
    schema_name: str
    table_name: str
    load_method: str | None
    rows_inserted: int
    rows_updated: int
    rows_deleted: int
    rows_quarantined: int
    batches: int
    bytes: int
    started_at: datetime
    ended_at: datetime | None
    status: str
    error: str | None

    @property
    def rows(self) -> int:
        return self.rows_inserted + self.rows_updated + self.rows_deleted + self.rows_quarantined

    @property
    def duration(self) -> float | None:
        return (self.ended_at - self.started_at).total_seconds() if self.ended_at else None

    @property
    def rows_per_second(self) -> float | None:
        seconds = self.duration
        return self.rows / seconds if seconds else None


@dataclass(frozen=True)
class CheckRow:
    check_name: str
    kind: str
    status: str
    observed: str | None
    expected: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class AlertRow:
    fingerprint: str
    pipeline: str | None
    check_name: str | None
    severity: str
    status: str
    first_seen_at: datetime
    last_sent_at: datetime | None
    resolved_at: datetime | None
    send_count: int
    last_message: str | None

    @property
    def title(self) -> str:
        return (self.last_message or "").split("\n", 1)[0]


@dataclass(frozen=True)
class LogLines:
    """The run's log from a log table of the control schema, when there is one."""

    lines: list[str]
    truncated: bool


@dataclass(frozen=True)
class RunDetail:
    run: RunRow
    pipeline_id: uuid.UUID
    run_id: uuid.UUID | None
    pid: int | None
    heartbeat_at: datetime | None
    log_tail: str | None
    events: list[EventRow]
    loads: list[LoadRow]
    checks: list[CheckRow]
    alerts: list[AlertRow]
    log: LogLines
    previous: uuid.UUID | None
    next: uuid.UUID | None

    @property
    def is_active(self) -> bool:
        return self.run.status in ACTIVE


_ALERT_COLUMNS = (
    A.c.fingerprint,
    P.c.name,
    A.c.check_name,
    A.c.severity,
    A.c.status,
    A.c.first_seen_at,
    A.c.last_sent_at,
    A.c.resolved_at,
    A.c.send_count,
    A.c.last_message,
)
LOG_LINES = 5000


def run_detail(conn: Connection, execution_id: uuid.UUID, now: datetime) -> RunDetail | None:
    head = conn.execute(
        select(*_RUN_COLUMNS, E.c.pipeline_id, E.c.run_id, E.c.pid, E.c.heartbeat_at, E.c.log_tail)
        .select_from(E.join(P, P.c.id == E.c.pipeline_id))
        .where(E.c.id == execution_id)
    ).one_or_none()
    if head is None:
        return None
    run = _run_row(head[: len(_RUN_COLUMNS)])
    pipeline_id, run_id, pid, heartbeat_at, log_tail = head[len(_RUN_COLUMNS) :]
    previous, following = _neighbours(conn, pipeline_id, run.number)
    return RunDetail(
        run=run,
        pipeline_id=pipeline_id,
        run_id=run_id,
        pid=pid,
        heartbeat_at=heartbeat_at,
        log_tail=log_tail,
        events=_events(conn, execution_id, run.created_at),
        loads=_loads(conn, execution_id),
        checks=_checks(conn, execution_id),
        alerts=_alerts_during(
            conn, pipeline_id, run.created_at, (run.ended_at or now) + timedelta(minutes=1)
        ),
        log=run_log(conn, execution_id),
        previous=previous,
        next=following,
    )


def _events(conn: Connection, execution_id: uuid.UUID, created_at: datetime) -> list[EventRow]:
    """The run's events, each with its offset from the first (for the timeline's "+" column)."""
    rows = conn.execute(
        select(EV.c.seq, EV.c.at, EV.c.type, EV.c.payload)
        .where(EV.c.execution_id == execution_id)
        .order_by(EV.c.seq)
    ).all()
    first = rows[0].at if rows else created_at
    return [EventRow(e.seq, e.at, e.type, e.payload or {}, (e.at - first).total_seconds()) for e in rows]


def _loads(conn: Connection, execution_id: uuid.UUID) -> list[LoadRow]:
    columns = (
        SL.c.stream,
        SL.c.schema_name,
        SL.c.table_name,
        SL.c.load_method,
        SL.c.rows_inserted,
        SL.c.rows_updated,
        SL.c.rows_deleted,
        SL.c.rows_quarantined,
        SL.c.batches,
        SL.c.bytes,
        SL.c.started_at,
        SL.c.ended_at,
        SL.c.status,
        SL.c.error,
    )
    query = select(*columns).where(SL.c.execution_id == execution_id).order_by(SL.c.started_at, SL.c.stream)
    return [LoadRow(*row) for row in conn.execute(query)]


def _checks(conn: Connection, execution_id: uuid.UUID) -> list[CheckRow]:
    query = (
        select(V.c.check_name, V.c.kind, V.c.status, V.c.observed, V.c.expected, V.c.details)
        .where(V.c.execution_id == execution_id)
        .order_by(V.c.created_at, V.c.check_name)
    )
    return [CheckRow(*row) for row in conn.execute(query)]


def _alerts_during(
    conn: Connection, pipeline_id: uuid.UUID, start: datetime, end: datetime
) -> list[AlertRow]:
    """Alerts are kept per fingerprint, not per run: those of this pipeline that were firing at some point
    while the run went on (up to a minute after its end, when its outcome is announced or resolved)."""
    query = (
        select(*_ALERT_COLUMNS)
        .select_from(A.outerjoin(P, P.c.id == A.c.pipeline_id))
        .where(
            A.c.pipeline_id == pipeline_id,
            A.c.first_seen_at <= end,
            or_(A.c.resolved_at.is_(None), A.c.resolved_at >= start),
        )
        .order_by(A.c.first_seen_at)
    )
    return [AlertRow(*row) for row in conn.execute(query)]


def _neighbours(
    conn: Connection, pipeline_id: uuid.UUID, number: int
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The ids of the pipeline's runs just before and after this one (for the page's arrows)."""
    rows = conn.execute(
        select(E.c.execution_number, E.c.id).where(
            E.c.pipeline_id == pipeline_id, E.c.execution_number.in_((number - 1, number + 1))
        )
    ).all()
    by_number: dict[int, uuid.UUID] = {n: key for n, key in rows}
    return by_number.get(number - 1), by_number.get(number + 1)


def run_log(conn: Connection, execution_id: uuid.UUID, limit: int | None = LOG_LINES) -> LogLines:
    """The run's stored log (`flx.execution.logstore`): the last `limit` lines, or all of them."""
    L = ExecutionLog.__table__
    rows = conn.execute(
        select(L.c.attempt, L.c.first_line, L.c.line_count, L.c.data)
        .where(L.c.execution_id == execution_id)
        .order_by(L.c.first_line)
    ).all()
    lines, _ = lines_after((Chunk(a, f, n, bytes(d)) for a, f, n, d in rows), 0)
    if limit is None or len(lines) <= limit:
        return LogLines(lines, False)
    return LogLines(lines[-limit:], True)


def pipeline_id(conn: Connection, name: str) -> uuid.UUID | None:
    return conn.scalar(select(P.c.id).where(P.c.name == name))


def pipeline_names(conn: Connection) -> list[str]:
    return list(conn.scalars(select(P.c.name).order_by(P.c.name)))


@dataclass(frozen=True)
class DurationPoint:
    id: uuid.UUID
    number: int
    at: datetime
    duration: float
    status: str


def durations(
    conn: Connection, pipeline: uuid.UUID, since: datetime, limit: int = DURATION_POINTS
) -> list[DurationPoint]:
    """The pipeline's finished runs since `since` (the newest `limit`), oldest first."""
    rows = conn.execute(
        select(
            E.c.id,
            E.c.execution_number,
            func.coalesce(E.c.started_at, E.c.created_at),
            E.c.duration_seconds,
            E.c.status,
        )
        .where(E.c.pipeline_id == pipeline, E.c.created_at >= since, E.c.duration_seconds.is_not(None))
        .order_by(E.c.created_at.desc())
        .limit(limit)
    ).all()
    return [DurationPoint(r[0], r[1], r[2], float(r[3]), r[4]) for r in reversed(rows)]


@dataclass(frozen=True)
class StreamRows:
    runs: list[tuple[uuid.UUID, int]]  # (execution id, number), oldest first
    streams: dict[str, list[int]]  # stream -> rows loaded in each of `runs`


def rows_per_stream(conn: Connection, pipeline: uuid.UUID, last: int = 60) -> StreamRows:
    """Rows written (inserted + updated + deleted) per stream in each of the pipeline's last runs."""
    recent = (
        select(E.c.id, E.c.execution_number)
        .where(E.c.pipeline_id == pipeline)
        .order_by(E.c.execution_number.desc())
        .limit(last)
        .subquery("recent")
    )
    written = SL.c.rows_inserted + SL.c.rows_updated + SL.c.rows_deleted
    rows = conn.execute(
        select(recent.c.id, recent.c.execution_number, SL.c.stream, func.sum(written))
        .select_from(recent.join(SL, SL.c.execution_id == recent.c.id))
        .group_by(recent.c.id, recent.c.execution_number, SL.c.stream)
        .order_by(recent.c.execution_number)
    ).all()
    runs: list[tuple[uuid.UUID, int]] = []
    for run_id, number, _stream, _rows in rows:
        if not runs or runs[-1][0] != run_id:
            runs.append((run_id, number))
    position = {run_id: i for i, (run_id, _) in enumerate(runs)}
    streams: dict[str, list[int]] = {}
    for run_id, _number, stream, count in rows:
        streams.setdefault(stream, [0] * len(runs))[position[run_id]] = int(count or 0)
    return StreamRows(runs, dict(sorted(streams.items())))


@dataclass(frozen=True)
class FailureDays:
    days: list[str]  # YYYY-MM-DD, every day of the range
    pipelines: dict[str, list[int]]  # pipeline -> failures on each day


def failures_per_day(conn: Connection, since: datetime, now: datetime) -> FailureDays:
    """Failed, failed-validation and timed-out runs per UTC day and pipeline, every day of the range."""
    day = func.to_char(func.date_trunc("day", E.c.created_at), "YYYY-MM-DD")  # sessions are in UTC
    rows = conn.execute(
        select(day, E.c.pipeline_id, func.count())
        .where(E.c.created_at >= since, E.c.status.in_(FAILURES))
        .group_by(day, E.c.pipeline_id)
    ).all()
    names = dict(conn.execute(select(P.c.id, P.c.name)).tuples().all())
    days: list[str] = []
    cursor = since.date()
    while cursor <= now.date():
        days.append(cursor.isoformat())
        cursor += timedelta(days=1)
    index = {d: i for i, d in enumerate(days)}
    pipelines: dict[str, list[int]] = {}
    for key, pipeline, count in rows:
        if key in index:
            name = names.get(pipeline, str(pipeline))
            pipelines.setdefault(name, [0] * len(days))[index[key]] += int(count)
    return FailureDays(days, dict(sorted(pipelines.items())))


def alerts(conn: Connection, status: str | None, limit: int = 500) -> list[AlertRow]:
    """Firing first, then by when they last moved."""
    moved = func.greatest(A.c.first_seen_at, A.c.last_sent_at, A.c.resolved_at)
    query = select(*_ALERT_COLUMNS).select_from(A.outerjoin(P, P.c.id == A.c.pipeline_id))
    if status:
        query = query.where(A.c.status == status)
    return [
        AlertRow(*row)
        for row in conn.execute(
            query.order_by(case((A.c.status == "firing", 0), else_=1), moved.desc()).limit(limit)
        )
    ]


def alert_counts(conn: Connection) -> dict[str, int]:
    return {str(s): int(n) for s, n in conn.execute(select(A.c.status, func.count()).group_by(A.c.status))}


def newest_run_since(conn: Connection, pipeline: str, since: datetime) -> uuid.UUID | None:
    return conn.scalar(
        select(E.c.id)
        .select_from(E.join(P, P.c.id == E.c.pipeline_id))
        .where(P.c.name == pipeline, E.c.created_at >= since)
        .order_by(E.c.created_at.desc())
        .limit(1)
    )


def recorded_alert_urls(conn: Connection) -> list[tuple[str, bool]]:
    """URLs recorded with the pipelines (by any machine sharing the database), secrets to hide: alert URLs
    (True: their token-like parts too) and validation sources (False: their password)."""
    urls: list[tuple[str, bool]] = []
    for config in conn.scalars(select(P.c.config)):
        if isinstance(config, dict):
            urls += [(str(u), True) for u in config.get("alert_urls") or [] if u]
            for check in config.get("validations") or []:
                if isinstance(check, dict) and check.get("source"):
                    urls.append((str(check["source"]), False))
    return urls
