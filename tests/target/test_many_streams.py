"""Many small streams in one run: the tables are prepared together, each stream costs a bounded number of
statements, and every STATE still goes out only once the records before it are committed."""

from __future__ import annotations

import json
import select
import time
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import psycopg
import pytest
from sqlalchemy.engine import URL

from flx_core.database import resolve
from flx_core.settings import DatabaseSettings, libpq_conninfo
from target_flx.connection import Reconnect
from target_flx.ddl import TableSpec
from target_flx.loop import LoopThread
from target_flx.table import Catalog

from .singer_io import record, schema_msg, singer, state

PROPS = {"id": {"type": "integer"}, "v": {"type": ["null", "string"]}}
STREAMS = [f"s{i:02d}" for i in range(40)]


def _streams(names: list[str], ids: range, value: str) -> list[dict[str, Any]]:
    """Stream after stream, as a tap over many tables sends them: SCHEMA, its records, a STATE."""
    messages: list[dict[str, Any]] = []
    for n, name in enumerate(names):
        messages.append(schema_msg(name, PROPS, ["id"]))
        messages += [record(name, {"id": i, "v": f"{value}{i}"}) for i in ids]
        messages.append(state({"done": n + 1}))
    return messages


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement target-flx's connections send (COPY data aside), through asyncpg's query logger."""
    seen: list[str] = []
    real = asyncpg.create_pool

    def logged_pool(*args: Any, **kwargs: Any) -> Any:
        async def init(conn: asyncpg.Connection) -> None:
            conn.add_query_logger(lambda logged: seen.append(logged.query))

        return real(*args, init=init, **kwargs)

    monkeypatch.setattr(asyncpg, "create_pool", logged_pool)
    yield seen


def test_statements_per_stream_stay_bounded_on_existing_tables(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str, statements: list[str]
) -> None:
    """Into tables an earlier run made: no per-table catalog reads or key-range reads of their own; a
    stream's one batch is its transaction (begin, stage, merge, history, commit) and little more."""
    load(singer(*_streams(STREAMS, range(10), "a")))
    statements.clear()
    result = load(singer(*_streams(STREAMS, range(5, 15), "b")))
    assert result.states == [{"done": len(STREAMS)}]
    # 5 a stream, and at worst one catalog read and one key-range read a stream (the catalog answers the
    # tables that wait together; how many wait at once depends on timing)
    assert len(statements) <= 7 * len(STREAMS) + 5, len(statements)
    for name in STREAMS[::13]:
        rows = query(f'SELECT id, v FROM "{target_schema}"."{name}" ORDER BY id')
        assert rows == [(i, f"a{i}") for i in range(5)] + [(i, f"b{i}") for i in range(5, 15)]
    # each stream's history row, written with its batch: both runs' inserts, the second run's updates
    loads = query(
        "SELECT sum(rows_inserted), sum(rows_updated), count(*) FROM flx.stream_loads"
        " WHERE schema_name = %s AND status = 'succeeded'",
        target_schema,
    )
    assert loads == [((10 + 5) * len(STREAMS), 5 * len(STREAMS), 2 * len(STREAMS))]


def test_catalog_answers_the_tables_waiting_together(
    database_url: URL, target_config: dict[str, Any], target_schema: str, statements: list[str]
) -> None:
    """Tables asked for while the loop thread is busy are answered in one round: one catalog query for
    all, one key-range query for the tables that were there, DDL only for the missing one."""
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{target_schema}"')
        for n in range(12):
            conn.execute(f'CREATE TABLE "{target_schema}".t{n} (id bigint PRIMARY KEY, v text)')
            conn.execute(f'INSERT INTO "{target_schema}".t{n} SELECT g, NULL FROM generate_series({n}, 20) g')
    db = resolve(DatabaseSettings.from_config(target_config))
    loop = LoopThread(db.asyncpg_kwargs(), pool_size=2, reconnect=Reconnect(0))
    catalog = Catalog(loop)
    try:
        wanted = {"id": "bigint", "v": "text"}
        statements.clear()
        loop.loop.call_soon_threadsafe(time.sleep, 0.5)  # the loop thread busy: all 13 wait together
        answers = [
            catalog.prepare(
                TableSpec(target_schema, f"t{n}", wanted, ["id"], primary_key=True), ("id", "integer")
            )
            for n in range(13)  # t12 is not there yet
        ]
        prepared = [answer.result(timeout=30) for answer in answers]
        catalog.close(cancel=False)
    finally:
        loop.close()
    assert [p.key_range for p in prepared] == [(n, 20) for n in range(12)] + [None]
    assert all(p.range_known and p.columns == wanted for p in prepared)
    assert sum("pg_attribute" in s and "unnest" in s for s in statements) == 1
    assert sum("DESC LIMIT 1" in s for s in statements) == 1  # t12 was created just now: empty, not read
    assert sum(s.startswith("CREATE TABLE") for s in statements) == 1


def test_state_after_many_streams_goes_out_only_once_they_are_committed(
    cli_process: Callable[..., Any], load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    """Streams after streams into existing tables, the input pausing after every tenth: each STATE the
    target prints is checked against the database at the moment it is printed."""
    load(singer(*_streams(STREAMS, range(10), "a")))
    proc = cli_process(batch_size_rows=7)
    messages = _streams(STREAMS, range(5, 25), "b")
    per_stream = len(messages) // len(STREAMS)
    seen: list[int] = []
    for end in range(10, len(STREAMS) + 1, 10):
        proc.stdin.write(singer(*messages[(end - 10) * per_stream : end * per_stream]))
        proc.stdin.flush()
        while not seen or seen[-1] < end:  # the pause commits them all; a STATE may go out on the way
            assert select.select([proc.stdout], [], [], 60)[0], "no STATE while the input paused"
            done = json.loads(proc.stdout.readline())["done"]
            loaded = " UNION ALL ".join(
                f'SELECT id FROM "{target_schema}"."{name}" WHERE v = \'b\' || id' for name in STREAMS[:done]
            )
            counts = query(f"SELECT count(*) FROM ({loaded}) loaded")
            assert counts == [(20 * done,)], f"STATE done={done} printed before its records were committed"
            seen.append(done)
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0
    assert seen == sorted(set(seen)) and seen[-1] == len(STREAMS)
    rows = query(f'SELECT id, v FROM "{target_schema}"."{STREAMS[-1]}" ORDER BY id')
    assert rows == [(i, f"a{i}") for i in range(5)] + [(i, f"b{i}") for i in range(5, 25)]


def test_differently_shaped_tables_each_have_a_stage_emptied_for_every_batch(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    """Beyond the first layouts, a stage is emptied before each batch rather than at every commit: keys
    repeated across a stream's batches (each batch merged through the same stage) still leave exactly
    the last record of each key."""
    extra = [
        {},
        {"n": {"type": "integer"}},
        {"d": {"type": "string", "format": "date"}},
        {"f": {"type": "number"}},
    ]
    names = [f"shape{i}" for i in range(len(extra))]

    def run(value: str) -> Any:
        messages: list[dict[str, Any]] = []
        for name, more in zip(names, extra, strict=True):
            messages.append(schema_msg(name, {**PROPS, **more}, ["id"]))
            messages += [record(name, {"id": i % 5, "v": f"{value}{i}"}) for i in range(12)]
        return load(singer(*messages, state("end")), batch_size_rows=3)

    run("a")
    run("b")
    for name in names:
        rows = query(f'SELECT id, v FROM "{target_schema}"."{name}" ORDER BY id')
        assert rows == [(i, f"b{i + 10 if i < 2 else i + 5}") for i in range(5)], name
