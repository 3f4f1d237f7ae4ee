"""A seeded control schema per test module, and tap-flx run in-process or as the real CLI.

`seed_history` is importable by other tests: it writes realistic history through the SQLAlchemy models
(every ExecutionStatus, events, loads, validations, alerts, quarantined lines, awkward values).
"""

from __future__ import annotations

import io
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from flx_core.database import make_engine
from flx_core.migrate import ensure_schema
from flx_core.models import (
    Alert,
    Execution,
    ExecutionEvent,
    ExecutionStatus,
    Pipeline,
    PipelineStep,
    Plugin,
    QuarantinedRecord,
    StreamLoad,
    ValidationResult,
)
from flx_core.settings import DatabaseSettings, libpq_conninfo
from tap_flx.tap import TapFlx

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def seed_history(engine: Engine, *, pipelines: int = 3, tag: str = "") -> dict[str, int]:
    """Insert a realistic history; returns the number of rows written per table.

    `tag` keeps names unique when called more than once on one schema.
    """
    counts: dict[str, int] = defaultdict(int)
    with Session(engine) as session:
        plugins = [
            Plugin(name=f"tap-github{tag}", type="extractors", variant="meltanolabs", config={"repo": "x"}),
            Plugin(name=f"target-flx{tag}", type="loaders", namespace="target_flx", pip_url=None),
            Plugin(name=f"dbt{tag}", type="utilities", config={"threads": 4, "ratio": 0.1}),
        ]
        session.add_all(plugins)
        counts["plugins"] += len(plugins)
        for p in range(pipelines):
            pipeline = Pipeline(
                name=f"pipeline-{p}{tag}",
                description="naïve ☃ description" if p == 0 else None,
                schedule="*/5 * * * *" if p % 2 == 0 else None,
                timeout_seconds=3600 if p == 1 else None,
                retry_attempts=p,
                config={"env": {"A": "1"}, "weights": [1.5, 2, None], "big": 2**62},
            )
            session.add(pipeline)
            session.flush()
            counts["pipelines"] += 1
            for position, plugin in enumerate(plugins):
                session.add(
                    PipelineStep(
                        pipeline_id=pipeline.id, position=position, block=plugin.name, plugin_id=plugin.id
                    )
                )
                counts["pipeline_steps"] += 1
            session.add(
                Alert(
                    fingerprint=f"{pipeline.name}:freshness",
                    pipeline_id=pipeline.id,
                    check_name="freshness",
                    severity="critical" if p == 0 else "warning",
                    status="open" if p % 2 == 0 else "resolved",
                    resolved_at=None if p % 2 == 0 else T0 + timedelta(hours=p),
                    send_count=p + 1,
                    last_message="data is 3 h old",
                )
            )
            counts["alerts"] += 1
            for number, status in enumerate(ExecutionStatus, start=1):
                started = T0 + timedelta(minutes=10 * number, seconds=p)
                ended = started + timedelta(seconds=number * 1.5) if status.is_final else None
                execution = Execution(
                    pipeline_id=pipeline.id,
                    execution_number=number,
                    trigger="schedule" if number % 2 else "manual",
                    status=status.value,
                    attempt=2 if status is ExecutionStatus.RETRYING else 1,
                    started_at=None if status is ExecutionStatus.PENDING else started,
                    ended_at=ended,
                    heartbeat_at=started + timedelta(seconds=1) if not status.is_final else None,
                    duration_seconds=Decimal(number * 1500) / 1000 if ended else None,
                    exit_code=(0 if status is ExecutionStatus.SUCCEEDED else 1) if ended else None,
                    error="boom\nline 2" if status is ExecutionStatus.FAILED else None,
                    run_id=uuid.uuid4(),
                    hostname="worker-1",
                    pid=1000 + number,
                )
                session.add(execution)
                session.flush()
                counts["executions"] += 1
                _seed_execution_children(session, execution, status, counts)
                session.commit()  # one transaction per execution: rows carry distinct updated_at
        session.commit()
    return dict(counts)


def _seed_execution_children(
    session: Session, execution: Execution, status: ExecutionStatus, counts: dict[str, int]
) -> None:
    for seq, kind in enumerate(("queued", "started", "heartbeat", status.value), start=1):
        session.add(
            ExecutionEvent(
                execution_id=execution.id,
                seq=seq,
                type=kind,
                payload={"seq": seq, "elapsed": 0.25 * seq, "note": None},
                at=T0 + timedelta(seconds=seq),
            )
        )
        counts["execution_events"] += 1
    if status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.FAILED_VALIDATION):
        for stream in ("issues", "commits"):
            session.add(
                StreamLoad(
                    execution_id=execution.id,
                    run_id=execution.run_id,
                    stream=stream,
                    schema_name="raw",
                    table_name=stream,
                    load_method="upsert",
                    rows_inserted=10_000_000_000 if stream == "issues" else 3,
                    rows_updated=1,
                    rows_quarantined=1 if status is ExecutionStatus.FAILED else 0,
                    batches=2,
                    bytes=123_456,
                    ended_at=execution.ended_at,
                    status="failed" if status is ExecutionStatus.FAILED else "succeeded",
                    error="COPY failed" if status is ExecutionStatus.FAILED else None,
                )
            )
            counts["stream_loads"] += 1
        session.add(
            ValidationResult(
                execution_id=execution.id,
                check_name="row_count",
                kind="row_count",
                status="failed" if status is ExecutionStatus.FAILED_VALIDATION else "passed",
                observed="3",
                expected=">= 1",
                details={"threshold": 0.001, "tables": ["raw.issues"]},
            )
        )
        counts["validation_results"] += 1
    if status is ExecutionStatus.FAILED:
        session.add(
            QuarantinedRecord(
                execution_id=execution.id,
                run_id=execution.run_id,
                stream="issues",
                line_number=42,
                field="created_at",
                error="not a date-time",
                raw_line='{"type":"RECORD","stream":"issues","record":{"created_at":"yesterday"}}',
            )
        )
        counts["quarantine"] += 1


@dataclass
class Synced:
    """What one tap run wrote: records per stream, STATE values, SCHEMA messages."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    states: list[dict[str, Any]] = field(default_factory=list)
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)  # all of them, in order

    @property
    def last_state(self) -> dict[str, Any]:
        return self.states[-1]


def parse_output(text: str) -> Synced:
    synced = Synced()
    for line in text.splitlines():
        if not line.strip():
            continue
        message = json.loads(line, parse_float=Decimal)
        synced.messages.append(message)
        if message["type"] == "RECORD":
            synced.records[message["stream"]].append(message["record"])
        elif message["type"] == "STATE":
            synced.states.append(message["value"])
        elif message["type"] == "SCHEMA":
            synced.schemas[message["stream"]] = message
    return synced


def select_only(catalog: dict[str, Any], streams: set[str]) -> dict[str, Any]:
    """The catalog with only `streams` selected."""
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


@pytest.fixture(scope="module")
def control_schema(database_url: URL) -> Iterator[str]:
    """A control schema of this module's own: other modules (and target tests) write to theirs."""
    name = f"tap_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="module")
def control_engine(db_settings: DatabaseSettings, control_schema: str) -> Iterator[Engine]:
    settings = db_settings.model_copy(update={"control_schema": control_schema})
    engine = make_engine(settings)
    ensure_schema(engine, control_schema)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def seeded(control_engine: Engine) -> dict[str, int]:
    return seed_history(control_engine)


@pytest.fixture(scope="module")
def tap_config(db_config: dict[str, str], control_schema: str) -> dict[str, Any]:
    return {**db_config, "control_schema": control_schema}


@pytest.fixture
def sync(tap_config: dict[str, Any]) -> Callable[..., Synced]:
    """Run tap-flx in-process (as the SDK's test runner does) and parse what it wrote."""

    def run(
        state: dict[str, Any] | None = None, catalog: dict[str, Any] | None = None, **overrides: Any
    ) -> Synced:
        tap = TapFlx(config={**tap_config, **overrides}, state=state, catalog=catalog)
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        with redirect_stdout(out):
            tap.sync_all()
            out.flush()
        if tap.database is not None:
            tap.database.dispose()
        return parse_output(out.buffer.getvalue().decode())

    return run


def json_form(value: Any) -> Any:
    """A database value as tap-flx must write it (uuid and timestamps as text; numbers exact)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def table_rows(database_url: URL, schema: str, table: str) -> dict[str, dict[str, Any]]:
    """Every row of `schema.table` by id, in JSON form, jsonb numbers as Decimal (read with psycopg)."""
    from psycopg.rows import dict_row
    from psycopg.types.json import set_json_loads

    with psycopg.connect(libpq_conninfo(database_url), row_factory=dict_row) as conn:
        set_json_loads(lambda data: json.loads(data, parse_float=Decimal), context=conn)
        rows = conn.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
    return {str(row["id"]): {k: json_form(v) for k, v in row.items()} for row in rows}
