"""Switching from MeltanoLabs target-postgres 0.8.1: its tables are target-flx's tables.

The same streams are loaded by the reference first, then by target-flx into the same schema: one table per
stream, one column per property, no column type changed where the values fit it, and the rows target-flx
adds read back exactly (arrays as arrays, instants as the reference's UTC wall time)."""

from __future__ import annotations

import datetime
import decimal
import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import URL

from flx_core.settings import libpq_conninfo
from tests.target.singer_io import record, schema_msg, singer

pytestmark = pytest.mark.compat

PROPS: dict[str, Any] = {
    "id": {"type": "integer"},
    "clientName": {"type": ["null", "string"]},
    "Mixed Case": {"type": ["null", "string"]},
    "with-dash": {"type": ["null", "string"]},
    "dot.name": {"type": ["null", "string"]},
    "tiny": {"type": ["null", "integer"], "minimum": 0, "maximum": 255},
    "unsigned": {"type": ["null", "integer"], "minimum": 0, "maximum": 18446744073709551615},
    "amount": {"type": ["null", "number"]},
    "at": {"type": ["null", "string"], "format": "date-time"},
    "day": {"type": ["null", "string"], "format": "date"},
    "clock": {"type": ["null", "string"], "format": "time"},
    "uid": {"type": ["null", "string"], "format": "uuid"},
    "flag": {"type": ["null", "boolean"]},
    "doc": {"type": ["null", "object"]},
    "tags": {"type": ["null", "array"], "items": {"type": "string"}},
    "counts": {"type": ["null", "array"], "items": {"type": "integer"}},
    "prices": {"type": ["null", "array"], "items": {"type": ["null", "number"]}},
    "events": {"type": ["null", "array"], "items": {"type": "object"}},
    "stamps": {"type": ["null", "array"], "items": {"type": "string", "format": "date-time"}},
    "anything": {"type": ["null", "array"]},
    "untyped": {},
    "multi": {"type": ["null", "string", "integer"]},
    "maybe_at": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
    "one_of_at": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
    "blob": {"type": ["null", "string"], "contentEncoding": "base16"},
}


def _row(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "clientName": f"client {i}",
        "Mixed Case": "M",
        "with-dash": "D",
        "dot.name": "N",
        "tiny": 200,
        "unsigned": 2**63 - 1,
        "amount": decimal.Decimal("12.50"),
        "at": "2024-03-01T12:00:00+02:00",
        "day": "2024-02-29",
        "clock": "23:59:59",
        "uid": "709ddafe-ed34-4bfa-96f1-33da607744b8",
        "flag": True,
        "doc": {"a": [1, "x"]},
        "tags": ["a", "b c", 'q"uote'],
        "counts": [1, 2, 3],
        "prices": [decimal.Decimal("1.50"), None],
        "events": [{"k": 1}, {"k": [2]}],
        "stamps": ["2024-01-01T00:00:00Z"],
        "anything": [1, "x", None],
        "untyped": "plain text",
        "multi": 5,
        "maybe_at": "2024-03-01T12:00:00Z",
        "one_of_at": "2024-03-01T12:00:00Z",
        "blob": "00ff10",
    }


def _columns(query: Callable[..., Any], schema: str) -> dict[tuple[str, str], str]:
    return {
        (table, column): pg_type
        for table, column, pg_type in query(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped",
            schema,
        )
    }


def test_reference_tables_are_adopted_as_they_are(
    reference_load: Callable[..., Any],
    load: Callable[..., Any],
    query: Callable[..., Any],
    target_schema: str,
) -> None:
    streams = ["TestCamel", "myschema-MyTable"]
    text = singer(
        *[m for s in streams for m in (schema_msg(s, PROPS, ["id"]), record(s, _row(1)), record(s, _row(2)))]
    )
    reference_load(text, target_schema, interpret_content_encoding=True)
    before = _columns(query, target_schema)
    assert {t for t, _ in before} == {"TestCamel", "MyTable"}
    assert (
        before[("TestCamel", "tags")] == "text[]"
        and before[("TestCamel", "at")] == "timestamp without time zone"
    )

    later = {**_row(3), "tags": ["new"], "at": "2024-06-01T00:30:00-04:56:02"}
    changed = {**_row(1), "clientName": "renamed", "counts": []}
    text = singer(
        *[m for s in streams for m in (schema_msg(s, PROPS, ["id"]), record(s, later), record(s, changed))]
    )
    load(text, interpret_content_encoding=True)

    after = _columns(query, target_schema)
    assert after == before  # one table per stream, one column per property, no type changed
    rows = query(
        f'SELECT id, "clientName", "Mixed Case", "with-dash", "dot.name", tags, counts, prices, '
        "events::text[], stamps, at, maybe_at, one_of_at, untyped, multi, blob, tiny, unsigned, "
        "_sdc_extracted_at IS NULL "
        f'FROM "{target_schema}"."TestCamel" ORDER BY id'
    )
    assert [r[0] for r in rows] == [1, 2, 3]  # id 1 updated in place, no duplicate
    one, _, three = rows
    assert one[1] == "renamed" and one[6] == []
    assert three[1:5] == ("client 3", "M", "D", "N")
    assert three[5] == ["new"]
    assert three[6] == [1, 2, 3]
    assert three[7] == [decimal.Decimal("1.50"), None]
    assert [_json(e) for e in three[8]] == [{"k": 1}, {"k": [2]}]
    assert three[9] == ["2024-01-01T00:00:00Z"]  # a text[] column keeps the strings as sent
    assert three[10] == datetime.datetime(2024, 6, 1, 5, 26, 2)  # the UTC wall time, to the second
    assert three[11] == datetime.datetime(2024, 3, 1, 12, 0)
    assert three[12] == "2024-03-01T12:00:00Z"  # the reference made this a text column: text as sent
    assert three[13] == "plain text" and three[14] == "5"
    assert bytes(three[15]) == b"\x00\xff\x10"
    assert three[16:] == (200, 2**63 - 1, True)
    reference_rows = query(f'SELECT tags, at, untyped FROM "{target_schema}"."TestCamel" WHERE id = 2')
    assert reference_rows == [(["a", "b c", 'q"uote'], datetime.datetime(2024, 3, 1, 10, 0), "plain text")]


def test_values_that_do_not_fit_widen_the_reference_column(
    reference_load: Callable[..., Any],
    load: Callable[..., Any],
    query: Callable[..., Any],
    target_schema: str,
) -> None:
    props = {"id": {"type": "integer"}, "tiny": PROPS["tiny"], "unsigned": PROPS["unsigned"]}
    reference_load(
        singer(schema_msg("w", props, ["id"]), record("w", {"id": 1, "tiny": 1, "unsigned": 1})),
        target_schema,
    )
    types = _columns(query, target_schema)
    assert (types[("w", "tiny")], types[("w", "unsigned")]) == ("smallint", "bigint")
    load(singer(schema_msg("w", props, ["id"]), record("w", {"id": 2, "tiny": 255, "unsigned": 2**64 - 1})))
    types = _columns(query, target_schema)
    assert (types[("w", "tiny")], types[("w", "unsigned")]) == ("smallint", "numeric")
    assert query(f'SELECT unsigned FROM "{target_schema}".w ORDER BY id') == [(1,), (2**64 - 1,)]


def test_tables_of_earlier_target_flx_releases_are_renamed_to_the_names_as_sent(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str, database_url: URL
) -> None:
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{target_schema}"')
        conn.execute(
            f'CREATE TABLE "{target_schema}".testcamel'
            " (id bigint PRIMARY KEY, clientname text, mixed_case text)"
        )
        conn.execute(f"INSERT INTO \"{target_schema}\".testcamel VALUES (1, 'old', 'm')")
    props = {"id": {"type": "integer"}, "clientName": {"type": "string"}, "Mixed Case": {"type": "string"}}
    load(
        singer(
            schema_msg("TestCamel", props, ["id"]),
            record("TestCamel", {"id": 2, "clientName": "new", "Mixed Case": "n"}),
        )
    )
    assert query(f'SELECT id, "clientName", "Mixed Case" FROM "{target_schema}"."TestCamel" ORDER BY id') == [
        (1, "old", "m"),
        (2, "new", "n"),
    ]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
