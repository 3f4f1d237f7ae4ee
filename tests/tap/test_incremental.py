"""Incremental replication: only changes on the next sync, loss-free resume, start_date, late commits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from flx_core.settings import libpq_conninfo
from tap_flx.control import ControlTableStream
from tap_flx.tap import CONTROL_TABLES
from tests.tap.conftest import Synced, seed_history, table_rows


def _ids(records: list[dict[str, Any]]) -> set[str]:
    return {record["id"] for record in records}


def _bookmark(state: dict[str, Any], stream: str) -> str:
    value = state["bookmarks"][stream]["replication_key_value"]
    assert isinstance(value, str)
    return value


def test_second_sync_returns_only_rows_changed_since(
    seeded: dict[str, int],
    sync: Callable[..., Synced],
    control_engine: Engine,
    database_url: URL,
    control_schema: str,
) -> None:
    first = sync()
    state = first.last_state
    assert "progress_markers" not in str(state)
    for name in CONTROL_TABLES:
        assert _bookmark(state, name) == max(r["updated_at"] for r in first.records[name])

    # changes: an execution finishes (UPDATE: the trigger moves updated_at), new history arrives
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        changed = conn.execute(
            f"UPDATE \"{control_schema}\".executions SET status = 'succeeded', ended_at = now() "
            "WHERE status = 'running' RETURNING id::text"
        ).fetchall()
    assert changed
    added = seed_history(control_engine, pipelines=1, tag="-second")

    second = sync(state=state)
    for name in CONTROL_TABLES:
        rows = table_rows(database_url, control_schema, name)
        bookmark = _bookmark(state, name)
        # exactly: rows updated after the bookmark, plus those AT the bookmark (inclusive, sent again)
        expected = {row_id for row_id, row in rows.items() if row["updated_at"] >= bookmark}
        assert _ids(second.records[name]) == expected, name
        at_bookmark = {row_id for row_id, row in rows.items() if row["updated_at"] == bookmark}
        assert len(expected) == added.get(name, 0) + len(at_bookmark) + (
            len(changed) * (name == "executions")
        )
        assert {r["id"]: r for r in second.records[name]} == {i: rows[i] for i in expected}
    assert {row[0] for row in changed} <= _ids(second.records["executions"])

    third = sync(state=second.last_state)
    for name in CONTROL_TABLES:  # nothing new: only the rows sharing the final bookmark's instant
        bookmark = _bookmark(second.last_state, name)
        assert {r["updated_at"] for r in third.records[name]} == {bookmark}


@pytest.mark.parametrize("stream", ["execution_events", "executions"])
def test_interrupted_sync_resumes_without_loss(
    stream: str,
    seeded: dict[str, int],
    sync: Callable[..., Synced],
    monkeypatch: pytest.MonkeyPatch,
    database_url: URL,
    control_schema: str,
) -> None:
    """Cut the output after a mid-stream STATE (as a crash would), resume from it: nothing is missing."""
    monkeypatch.setattr(ControlTableStream, "STATE_MSG_FREQUENCY", 5)
    full = sync()
    records = full.records[stream]
    all_ids = set(table_rows(database_url, control_schema, stream))
    assert _ids(records) == all_ids

    # (records of the stream written before it, STATE) for each mid-stream STATE
    cuts: list[tuple[int, dict[str, Any]]] = []
    count = 0
    for message in full.messages:
        if message["type"] == "RECORD" and message["stream"] == stream:
            count += 1
        elif (
            message["type"] == "STATE"
            and 0 < count < len(records)
            and stream in message["value"].get("bookmarks", {})
        ):
            cuts.append((count, message["value"]))
    assert len(cuts) >= 2
    # prefer a cut whose next record shares the bookmark's instant: the case a strict `>` would lose
    tied = [(n, s) for n, s in cuts if records[n]["updated_at"] == _bookmark(s, stream)]
    if stream == "execution_events":
        assert tied, "the seed should put several events in one transaction"
    for emitted, state in tied[:2] or cuts[:2]:
        bookmark = _bookmark(state, stream)
        assert bookmark == records[emitted - 1]["updated_at"]
        resumed = sync(state=state).records[stream]
        assert _ids(records[:emitted]) | _ids(resumed) == all_ids
        assert _ids(resumed) == {r["id"] for r in records if r["updated_at"] >= bookmark}


def test_state_in_another_spelling_of_the_instant(
    seeded: dict[str, int], sync: Callable[..., Synced]
) -> None:
    """A hand-written bookmark ("…Z", no microseconds) must not trip the sort check."""
    records = sync().records["executions"]
    instant = records[len(records) // 2]["updated_at"]
    whole_second = instant[:19] + "Z"
    state = {
        "bookmarks": {"executions": {"replication_key": "updated_at", "replication_key_value": whole_second}}
    }
    resumed = sync(state=state).records["executions"]
    assert _ids(resumed) == {r["id"] for r in records if r["updated_at"] >= instant[:19]}


def test_start_date_limits_the_first_sync_only(seeded: dict[str, int], sync: Callable[..., Synced]) -> None:
    records = sync().records["executions"]
    middle = records[len(records) // 2]["updated_at"]
    limited = sync(start_date=middle)
    assert _ids(limited.records["executions"]) == {r["id"] for r in records if r["updated_at"] >= middle}
    assert 0 < len(limited.records["executions"]) < len(records)
    # with an older bookmark in state, the later of the two wins
    early = {
        "bookmarks": {
            "executions": {"replication_key": "updated_at", "replication_key_value": records[0]["updated_at"]}
        }
    }
    assert _ids(sync(state=early, start_date=middle).records["executions"]) == _ids(
        limited.records["executions"]
    )


def test_row_committed_late_by_an_older_transaction_is_not_skipped(
    seeded: dict[str, int],
    sync: Callable[..., Synced],
    database_url: URL,
    control_schema: str,
) -> None:
    """A writer whose transaction started before a newer committed row must still be picked up."""
    conninfo = libpq_conninfo(database_url)
    slow = psycopg.connect(conninfo)  # its rows get updated_at = the start of its transaction
    try:
        slow.execute("SELECT now()")
        slow_id = slow.execute(
            f"INSERT INTO \"{control_schema}\".plugins (name, type) VALUES ('slow', 'utilities') "
            "RETURNING id::text"
        ).fetchone()
        with psycopg.connect(conninfo, autocommit=True) as fast:
            fast_id = fast.execute(
                f"INSERT INTO \"{control_schema}\".plugins (name, type) VALUES ('fast', 'utilities') "
                "RETURNING id::text"
            ).fetchone()
        assert slow_id is not None and fast_id is not None

        during = sync()
        during_ids = _ids(during.records["plugins"])
        assert slow_id[0] not in during_ids  # not committed: invisible
        assert fast_id[0] not in during_ids  # newer than the open transaction: held for the next sync
        slow.commit()
    finally:
        slow.close()
    after = sync(state=during.last_state)
    assert {slow_id[0], fast_id[0]} <= _ids(after.records["plugins"])


def test_fresh_database_syncs_empty_streams(
    sync: Callable[..., Synced], database_url: URL, fresh_schema_name: str
) -> None:
    try:
        synced = sync(control_schema=fresh_schema_name)
        assert set(synced.schemas) == set(CONTROL_TABLES)
        assert not any(synced.records.values())
        with psycopg.connect(libpq_conninfo(database_url)) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (fresh_schema_name,)
            ).fetchone()
        assert tables is not None and tables[0] >= len(CONTROL_TABLES)
    finally:
        with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{fresh_schema_name}" CASCADE')
