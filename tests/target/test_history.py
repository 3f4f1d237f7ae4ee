"""target-flx writes one flx.stream_loads row per stream per run, linked to the orchestrator's execution."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text

from flx_core import migrate
from tests.target.singer_io import record, schema_msg, singer

PROPS = {"id": {"type": "integer"}, "v": {"type": ["null", "string"]}}


def test_stream_loads_linked_to_execution_and_run(
    cli: Callable[..., Any], query: Callable[..., Any], engine: Engine, target_schema: str
) -> None:
    migrate.ensure_schema(engine, "flx")
    execution_id, run_id = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as conn:
        pipeline_id = conn.execute(
            text("INSERT INTO flx.pipelines (name) VALUES (:n) RETURNING id"), {"n": f"p-{execution_id}"}
        ).scalar_one()
        conn.execute(
            text("INSERT INTO flx.executions (id, pipeline_id, execution_number) VALUES (:e, :p, 1)"),
            {"e": execution_id, "p": pipeline_id},
        )
    messages = [schema_msg("h1", PROPS, ["id"]), schema_msg("h2", PROPS)]
    messages += [record("h1", {"id": i}) for i in range(10)] + [record("h2", {"id": i}) for i in range(3)]
    result = cli(
        singer(*messages),
        env={"FLX_EXECUTION_ID": str(execution_id), "MELTANO_RUN_ID": str(run_id)},
        batch_size_rows=4,
    )
    assert result.returncode == 0, result.stderr
    rows = query(
        "SELECT stream, table_name, load_method, rows_inserted, batches, bytes > 0, status, "
        "ended_at >= started_at, run_id FROM flx.stream_loads WHERE execution_id = %s ORDER BY stream",
        execution_id,
    )
    assert rows == [
        ("h1", "h1", "upsert", 10, 3, True, "succeeded", True, run_id),
        ("h2", "h2", "append-only", 3, 1, True, "succeeded", True, run_id),
    ]
    assert "h1" in result.stderr and "succeeded" in result.stderr  # the summary table
