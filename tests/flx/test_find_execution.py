"""How `flx show`, `flx logs` and `flx cancel` find the execution a user names, against the real database."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest
from sqlalchemy import Engine, delete, update

from flx.cli.context import conninfo
from flx.cli.history import ExecutionNotFound, find_execution
from flx.config import PipelineSettings
from flx.execution.records import ExecutionRecord, sync_pipeline
from flx_core.models import Execution, ExecutionEvent
from flx_core.settings import DatabaseSettings

# ids chosen so that prefixes meet: "beef…" is also the name of a pipeline
FIRST = uuid.UUID("beef0000-0000-4000-8000-000000000001")
SECOND = uuid.UUID("beef1111-0000-4000-8000-000000000002")
OTHER = uuid.UUID("c0ffee00-0000-4000-8000-000000000003")


@pytest.fixture(scope="module")
def named(own_control: Engine) -> dict[str, uuid.UUID]:
    """Executions of pipelines `orders` (two), `beef` (one) and `c0ffee` (none), with the ids above."""
    ids: dict[str, uuid.UUID] = {}
    for pipeline, wanted in (("orders", FIRST), ("orders", SECOND), ("beef", OTHER)):
        pipeline_id = sync_pipeline(own_control, PipelineSettings(name=pipeline))
        record = ExecutionRecord.create(own_control, pipeline_id, "manual")
        with own_control.begin() as conn:
            conn.execute(delete(ExecutionEvent).where(ExecutionEvent.execution_id == record.id))
            conn.execute(update(Execution).where(Execution.id == record.id).values(id=wanted))
        ids[f"{pipeline}#{record.number}"] = wanted
    sync_pipeline(own_control, PipelineSettings(name="c0ffee"))
    return ids


def _find(own_control: Engine, db_settings: DatabaseSettings, ref: str) -> uuid.UUID:
    schema = own_control.get_execution_options()["schema_translate_map"]["flx"]
    with psycopg.connect(conninfo(db_settings)) as conn:
        found: uuid.UUID = find_execution(conn, schema, ref)[0]
        return found


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (str(FIRST), FIRST),  # a whole id
        ("beef0", FIRST),  # a unique prefix
        ("BEEF-1111", SECOND),  # case and dashes do not matter
        ("orders", SECOND),  # a pipeline's name: its newest execution
        ("beef", OTHER),  # a pipeline's name wins over an id prefix
        ("c0ffee", OTHER),  # a pipeline without executions: the name is read as an id prefix
        ("orders#1", FIRST),
    ],
)
def test_an_execution_is_found_by_id_prefix_name_or_number(
    own_control: Engine,
    db_settings: DatabaseSettings,
    named: dict[str, uuid.UUID],
    ref: str,
    expected: uuid.UUID,
) -> None:
    assert _find(own_control, db_settings, ref) == expected


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("bee", "more than one execution matches 'bee'"),
        ("dead", "no execution matches 'dead'"),
        ("orders#9", "no execution matches 'orders#9'"),
        ("orders#x", "expected pipeline#number"),
        ("b%", "no execution matches 'b%'"),
    ],
)
def test_what_matches_no_execution_or_many_is_named(
    own_control: Engine, db_settings: DatabaseSettings, named: dict[str, uuid.UUID], ref: str, says: str
) -> None:
    with pytest.raises(ExecutionNotFound, match=re.escape(says)):
        _find(own_control, db_settings, ref)
