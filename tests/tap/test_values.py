"""Values that JSON, psycopg or a float would mangle arrive exactly."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg
from sqlalchemy.engine import URL

from flx_core.settings import libpq_conninfo
from tests.tap.conftest import Synced


def test_awkward_values_survive(
    seeded: dict[str, int], sync: Callable[..., Synced], database_url: URL, control_schema: str
) -> None:
    """jsonb numbers keep their digits, numerics their scale, text its newlines and NULs-free unicode."""
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        pipeline_id = conn.execute(
            f'INSERT INTO "{control_schema}".pipelines (name, config) VALUES '
            """('awkward', '{"pi": 3.14159265358979323846264338327950288, "tenth": 1.10, "n": -0.0,"""
            """ "huge": 123456789012345678901234567890, "e": 1e-7, "nested": {"list": [1, "two", null]}}')"""
            " RETURNING id"
        ).fetchone()
        assert pipeline_id is not None
        conn.execute(
            f'INSERT INTO "{control_schema}".executions (pipeline_id, execution_number, status,'
            " duration_seconds, started_at, error) VALUES (%s, 1, 'succeeded', 12345678901.235,"
            " '0001-01-01 00:00:00.000001+00', %s)",
            (pipeline_id[0], 'multi\nline ✓ "quoted" \\ tab\t'),
        )
        conn.execute(
            f'INSERT INTO "{control_schema}".executions (pipeline_id, execution_number, duration_seconds)'
            " VALUES (%s, 2, 'NaN'), (%s, 3, -0.001)",
            (pipeline_id[0], pipeline_id[0]),
        )
    synced = sync()
    awkward = next(r for r in synced.records["pipelines"] if r["name"] == "awkward")
    config: dict[str, Any] = awkward["config"]
    assert config["pi"] == Decimal("3.14159265358979323846264338327950288")
    assert str(config["tenth"]) == "1.10"
    assert config["huge"] == 123456789012345678901234567890
    assert config["e"] == Decimal("1e-7")
    assert config["nested"] == {"list": [1, "two", None]}
    ours = [r for r in synced.records["executions"] if r["pipeline_id"] == str(pipeline_id[0])]
    executions = {r["execution_number"]: r for r in ours}
    execution = executions[1]
    assert executions[2]["duration_seconds"] is None  # NaN: JSON has none
    assert executions[3]["duration_seconds"] == Decimal("-0.001")
    assert execution["duration_seconds"] == Decimal("12345678901.235")
    assert execution["started_at"] == "0001-01-01T00:00:00.000001+00:00"
    assert execution["error"] == 'multi\nline ✓ "quoted" \\ tab\t'
    assert execution["ended_at"] is None
