"""A full sync returns every control row with exact values and exact JSON Schema types."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy.engine import URL

from flx_core.settings import libpq_conninfo
from tap_flx.tap import CONTROL_TABLES, TapFlx
from tests.tap.conftest import Synced, table_rows


def test_full_sync_returns_every_row_exactly(
    seeded: dict[str, int], sync: Callable[..., Synced], database_url: URL, control_schema: str
) -> None:
    synced = sync()
    assert all(seeded[name] > 0 for name in CONTROL_TABLES)
    for name in CONTROL_TABLES:
        expected = table_rows(database_url, control_schema, name)
        got = {record["id"]: record for record in synced.records[name]}
        assert len(got) == len(synced.records[name]) == seeded[name], name
        assert got == expected, name


def test_schema_types_are_exact(sync: Callable[..., Synced], seeded: dict[str, int]) -> None:
    schemas = sync().schemas
    executions = schemas["executions"]["schema"]["properties"]
    assert executions["id"] == {"type": ["string"], "format": "uuid"}
    assert executions["pipeline_id"] == {"type": ["string"], "format": "uuid"}
    assert executions["run_id"] == {"type": ["string", "null"], "format": "uuid"}
    assert executions["updated_at"] == {"type": ["string"], "format": "date-time"}
    assert executions["started_at"] == {"type": ["string", "null"], "format": "date-time"}
    assert executions["execution_number"] == {"type": ["integer"]}
    assert executions["pid"] == {"type": ["integer", "null"]}
    assert executions["duration_seconds"] == {"type": ["number", "null"]}
    assert executions["status"] == {"type": ["string"]}
    assert executions["error"] == {"type": ["string", "null"]}
    assert schemas["pipelines"]["schema"]["properties"]["is_active"] == {"type": ["boolean"]}
    assert schemas["pipelines"]["schema"]["properties"]["config"] == {"type": ["object"]}
    assert schemas["stream_loads"]["schema"]["properties"]["rows_inserted"] == {"type": ["integer"]}
    for name in CONTROL_TABLES:
        assert schemas[name]["key_properties"] == ["id"]
        assert schemas[name]["bookmark_properties"] == ["updated_at"]


def test_reads_through_a_server_side_cursor(
    seeded: dict[str, int], tap_config: dict[str, Any], database_url: URL
) -> None:
    """Rows are FETCHed a batch at a time from a cursor, not materialised client-side."""
    name = f"tap-flx-{uuid.uuid4().hex[:8]}"
    tap = TapFlx(config={**tap_config, "cursor_batch_rows": 7, "application_name": name})
    records = iter(tap.streams["execution_events"].get_records(None))
    try:
        first = [next(records), next(records)]  # SQLAlchemy FETCHes 1 row, then yield_per rows at a time
        with psycopg.connect(libpq_conninfo(database_url)) as conn:
            [(query,)] = conn.execute(
                "SELECT query FROM pg_stat_activity WHERE application_name = %s", (name,)
            ).fetchall()
        assert query.startswith("FETCH FORWARD 7 FROM"), query
        assert len(first) + sum(1 for _ in records) == seeded["execution_events"]
    finally:
        records.close()  # type: ignore[attr-defined]  # a generator: ends its transaction
        assert tap.database is not None
        tap.database.dispose()
