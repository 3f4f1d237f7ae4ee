"""append-only, upsert (across runs and within a batch), overwrite, ACTIVATE_VERSION."""

from __future__ import annotations

import decimal
from collections.abc import Callable
from typing import Any

import pytest

from tests.target.singer_io import record, schema_msg, singer

PROPS = {"id": {"type": "integer"}, "v": {"type": ["null", "string"]}}


def _rows(query: Callable[..., Any], schema: str, table: str = "t") -> list[tuple[Any, ...]]:
    return query(f'SELECT id, v FROM "{schema}"."{table}" ORDER BY id, v')


def test_upsert_is_default_with_keys_last_record_wins(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    load(
        singer(
            schema_msg("t", PROPS, ["id"]),
            record("t", {"id": 1, "v": "a"}),
            record("t", {"id": 2, "v": "b"}),
            record("t", {"id": 1, "v": "a2"}),
        )
    )
    assert _rows(query, target_schema) == [(1, "a2"), (2, "b")]
    # a second run updates, inserts, and across batches of one run the later record still wins
    load(
        singer(
            schema_msg("t", PROPS, ["id"]),
            record("t", {"id": 2, "v": "b2"}),
            record("t", {"id": 3, "v": "c"}),
            record("t", {"id": 3, "v": "c2"}),
        ),
        batch_size_rows=1,
    )
    assert _rows(query, target_schema) == [(1, "a2"), (2, "b2"), (3, "c2")]
    loads = query(
        "SELECT rows_inserted, rows_updated, status FROM flx.stream_loads WHERE schema_name = %s "
        "ORDER BY started_at",
        target_schema,
    )
    assert loads == [(2, 0, "succeeded"), (1, 2, "succeeded")]


def test_append_without_keys_and_when_asked(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    text = singer(schema_msg("t", PROPS), record("t", {"id": 1, "v": "a"}), record("t", {"id": 1, "v": "a"}))
    load(text)
    load(text)
    assert len(_rows(query, target_schema)) == 4
    keyed = singer(schema_msg("k", PROPS, ["id"]), record("k", {"id": 1, "v": "a"}))
    load(keyed, load_method="append-only")
    load(keyed, load_method="append-only")
    assert len(_rows(query, target_schema, "k")) == 2


@pytest.mark.parametrize("keys", [[], ["id"]])
def test_overwrite_swaps_in_a_new_table(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str, keys: list[str]
) -> None:
    load(
        singer(schema_msg("t", PROPS, keys), *[record("t", {"id": i, "v": "old"}) for i in range(5)]),
        load_method="overwrite",
    )
    load(
        singer(
            schema_msg("t", PROPS, keys),
            record("t", {"id": 9, "v": "new"}),
            record("t", {"id": 8, "v": "new"}),
        ),
        load_method="overwrite",
        batch_size_rows=1,
    )
    assert _rows(query, target_schema) == [(8, "new"), (9, "new")]
    tables = query("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", target_schema)
    assert tables == [("t",)]  # no staging table left behind


def test_overwrite_failure_leaves_old_table(
    cli: Callable[..., Any], load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    load(singer(schema_msg("t", PROPS), record("t", {"id": 1, "v": "old"})), load_method="overwrite")
    bad = singer(
        schema_msg("t", PROPS), record("t", {"id": 2, "v": "new"}), record("t", {"id": "x", "v": "new"})
    )
    assert cli(bad, load_method="overwrite").returncode != 0
    assert _rows(query, target_schema) == [(1, "old")]


@pytest.mark.parametrize("hard", [False, True])
def test_activate_version(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str, hard: bool
) -> None:
    def version(v: int, ids: list[int]) -> str:
        return singer(
            schema_msg("t", PROPS, ["id"]),
            {"type": "ACTIVATE_VERSION", "stream": "t", "version": v},
            *[record("t", {"id": i, "v": f"v{v}"}, version=v) for i in ids],
            {"type": "ACTIVATE_VERSION", "stream": "t", "version": v},
        )

    load(version(1, [1, 2, 3]), hard_delete=hard)
    load(version(2, [2, 3]), hard_delete=hard)
    rows = query(f'SELECT id, v, _sdc_deleted_at IS NOT NULL FROM "{target_schema}".t ORDER BY id')
    if hard:
        assert rows == [(2, "v2", False), (3, "v2", False)]
    else:
        assert rows == [(1, "v1", True), (2, "v2", False), (3, "v2", False)]


BIG = "123456789012345678901234567890.123456789"


def test_number_keys_and_values_upsert_exactly(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    """A number key: 1.0 and 1 are one key (last record wins); number values keep their exact text."""
    props = {"k": {"type": "number"}, "n": {"type": ["null", "number"]}}
    load(
        singer(
            schema_msg("nk", props, ["k"]),
            record("nk", {"k": 1, "n": 0.1}),
            record("nk", {"k": decimal.Decimal("1.0"), "n": decimal.Decimal(BIG)}),
            record("nk", {"k": 2.5, "n": None}),
            record("nk", {"k": 3, "n": decimal.Decimal("-1E-7")}),
        )
    )
    rows = query(f'SELECT k::text, n::text FROM "{target_schema}".nk ORDER BY k')
    assert rows == [("1.0", BIG), ("2.5", None), ("3", "-0.0000001")]


def test_upsert_of_new_keys_skips_the_stage_and_overlaps_still_merge(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches whose keys lie beyond every key in the table are COPYed straight in; any batch that could
    conflict (a key below the highest one loaded, a key repeated from an earlier batch) is merged, and
    the result is exactly what merging every batch would give."""
    from target_flx import write

    merged: list[int] = []
    real_merge = write.merge

    async def counting_merge(*args: Any, **kwargs: Any) -> Any:
        result = await real_merge(*args, **kwargs)
        merged.append(result.inserted + result.updated + result.unchanged)
        return result

    monkeypatch.setattr(write, "merge", counting_merge)
    ids = [1, 2, 3, 4, 5, 6, 2, 7, 10, 11, 9, 12]  # batches of 2: [1,2] [3,4] [5,6] [2,7] [10,11] [9,12]
    load(
        singer(
            schema_msg("t", PROPS, ["id"]), *[record("t", {"id": i, "v": f"r{n}"}) for n, i in enumerate(ids)]
        ),
        batch_size_rows=2,
    )
    assert merged == [2, 2]  # [2,7] repeats 2; [9,12] has 9 below 11; the other four went straight in
    expected = {i: f"r{n}" for n, i in enumerate(ids)}  # the last record of each key
    assert _rows(query, target_schema) == sorted(expected.items())
    loads = query(
        "SELECT rows_inserted, rows_updated FROM flx.stream_loads WHERE schema_name = %s", target_schema
    )
    assert loads == [(11, 1)]

    # a second run: keys above what the table holds go straight in, the rest merge
    merged.clear()
    load(
        singer(
            schema_msg("t", PROPS, ["id"]), *[record("t", {"id": i, "v": "again"}) for i in (13, 14, 12, 1)]
        ),
        batch_size_rows=2,
    )
    assert merged == [2]
    assert _rows(query, target_schema)[-3:] == [(12, "again"), (13, "again"), (14, "again")]
    assert _rows(query, target_schema)[0] == (1, "again")


def test_new_keys_written_by_someone_else_meanwhile_fall_back_to_merge(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str, database_url: Any
) -> None:
    """The key range is read when the stream starts; a row another writer adds afterwards makes the
    straight COPY fail on the unique key, and that batch is merged instead (its savepoint rolled back)."""
    import psycopg

    from flx_core.settings import libpq_conninfo
    from target_flx import key_range

    load(singer(schema_msg("t", PROPS, ["id"]), record("t", {"id": 1, "v": "a"})))
    real = key_range.KnownKeys.load

    def then_someone_writes(self: Any, *args: Any) -> None:
        real(self, *args)
        with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
            conn.execute(f'INSERT INTO "{target_schema}".t (id, v) VALUES (3, %s)', ("theirs",))

    key_range.KnownKeys.load = then_someone_writes  # type: ignore[method-assign]
    try:
        load(
            singer(
                schema_msg("t", PROPS, ["id"]),
                record("t", {"id": 2, "v": "b"}),
                record("t", {"id": 3, "v": "c"}),
            )
        )
    finally:
        key_range.KnownKeys.load = real  # type: ignore[method-assign]
    assert _rows(query, target_schema) == [(1, "a"), (2, "b"), (3, "c")]
