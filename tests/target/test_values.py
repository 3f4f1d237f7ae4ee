"""Values arrive exactly: no float round trips, no lost offsets, no "" turned into NULL."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable
from typing import Any

import pytest

from tests.target.singer_io import record, schema_msg, singer, state

# Every value test runs with the C encoder and with the Python reference encoder.
pytestmark = pytest.mark.usefixtures("encoder")

UTC = datetime.UTC
PROPS = {
    "id": {"type": "integer"},
    "big": {"type": ["null", "integer"]},
    "amount": {"type": ["null", "number"]},
    "at": {"type": ["null", "string"], "format": "date-time"},
    "day": {"type": ["null", "string"], "format": "date"},
    "text": {"type": ["null", "string"]},
    "flag": {"type": ["null", "boolean"]},
    "uid": {"type": ["null", "string"], "format": "uuid"},
    "doc": {"type": ["null", "object"]},
    "items": {"type": ["null", "array"]},
    "either": {"type": ["null", "string", "integer"]},
}


def test_exact_values_round_trip(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    rows = [
        {
            "id": 1,
            "big": 2**53 + 1,
            "amount": decimal.Decimal("123456789012345678901234567890.123456"),
            "at": "2024-03-01T12:34:56.123456+05:45",
            "day": "0001-01-01",
            "text": "",
            "flag": True,
            "uid": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
            "doc": {"a": [1, decimal.Decimal("2.50"), None]},
            "items": [],
            "either": "x",
        },
        {
            "id": 2,
            "big": 2**63 - 1,
            "amount": decimal.Decimal("0.1"),
            "at": "2024-03-01T12:34:56Z",
            "day": "9999-12-31",
            "text": None,
            "flag": False,
            "uid": None,
            "doc": None,
            "items": None,
            "either": 5,
        },
        {
            "id": 3,
            "big": -(2**63),
            "amount": decimal.Decimal("-1E-20"),
            "at": "2024-03-01T12:34:56",
            "text": "tab\there\nnewline \\ backslash \u00e9\u4e2d\U0001f600 \x01ctl",
            "doc": {},
        },
    ]
    text = singer(schema_msg("vals", PROPS, ["id"]), *[record("vals", r) for r in rows], state({"n": 3}))
    result = load(text)
    assert result.states == [{"n": 3}]
    got = query(
        f"SELECT id, big, amount, at, day, text, flag, uid::text, doc::text, items::text, either "
        f'FROM "{target_schema}"."vals" ORDER BY id'
    )
    assert got[0] == (
        1,
        2**53 + 1,
        decimal.Decimal("123456789012345678901234567890.123456"),
        datetime.datetime(2024, 3, 1, 6, 49, 56, 123456, tzinfo=UTC),
        datetime.date(1, 1, 1),
        "",
        True,
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        '{"a": [1, 2.50, null]}',
        "[]",
        "x",
    )
    assert got[1] == (
        2,
        2**63 - 1,
        decimal.Decimal("0.1"),
        datetime.datetime(2024, 3, 1, 12, 34, 56, tzinfo=UTC),
        datetime.date(9999, 12, 31),
        None,
        False,
        None,
        None,
        None,
        "5",
    )
    assert got[2][1] == -(2**63)
    assert got[2][2] == decimal.Decimal("-1E-20")
    assert got[2][3] == datetime.datetime(2024, 3, 1, 12, 34, 56, tzinfo=UTC)  # no offset = UTC
    assert got[2][5] == "tab\there\nnewline \\ backslash \u00e9\u4e2d\U0001f600 \x01ctl"
    assert got[2][8] == "{}"


def test_column_types(load: Callable[..., Any], query: Callable[..., Any], target_schema: str) -> None:
    load(singer(schema_msg("types", PROPS, ["id"])))
    types = dict(
        query(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'types'",
            target_schema,
        )
    )
    assert types["id"] == "bigint"
    assert types["amount"] == "numeric"
    assert types["at"] == "timestamp with time zone"
    assert types["day"] == "date"
    assert types["uid"] == "uuid"
    assert types["doc"] == "jsonb"
    assert types["items"] == "jsonb"
    assert types["either"] == "text"
    assert types["_sdc_extracted_at"] == "timestamp with time zone"
    assert types["_sdc_table_version"] == "bigint"


def test_x_sql_datatype_is_honoured(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    props = {
        "id": {"type": "integer", "x-sql-datatype": "smallint"},
        "v": {"type": "string", "x-sql-datatype": "jsonb"},
    }
    load(singer(schema_msg("xsql", props), record("xsql", {"id": 7, "v": "s"})))
    types = dict(
        query(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'xsql'",
            target_schema,
        )
    )
    assert types["id"] == "smallint"
    assert types["v"] == "jsonb"
    assert query(f'SELECT id, v::text FROM "{target_schema}".xsql') == [(7, '"s"')]


def test_long_and_clashing_names(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    long_a = "a" * 70 + "_first"
    long_b = "a" * 70 + "_second"
    props = {
        "id": {"type": "integer"},
        long_a: {"type": "string"},
        long_b: {"type": "string"},
        "Camel Case": {"type": "string"},
        "camel_case": {"type": "string"},
    }
    stream = "s" * 80
    load(
        singer(
            schema_msg(stream, props),
            record(stream, {"id": 1, long_a: "A", long_b: "B", "Camel Case": "C", "camel_case": "c"}),
        )
    )
    tables = query("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", target_schema)
    assert len(tables) == 1 and len(tables[0][0].encode()) <= 63
    cols = [
        c
        for (c,) in query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s", target_schema
        )
        if not c.startswith("_sdc")
    ]
    assert len(cols) == 5 and len(set(cols)) == 5
    assert all(len(c.encode()) <= 63 for c in cols)
    values = query(f'SELECT * FROM "{target_schema}"."{tables[0][0]}"')[0]
    assert {"A", "B", "C", "c"} <= set(values)


def test_lenient_forms_json_schema_allows(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    props = {"id": {"type": "integer"}, "at": {"type": ["null", "string"], "format": "date-time"}}
    load(
        singer(
            schema_msg("len", props),
            record("len", {"id": decimal.Decimal("1.0"), "at": "2024-03-01 12:00:00+0200"}),
        )
    )
    assert query(f'SELECT id, at FROM "{target_schema}".len') == [
        (1, datetime.datetime(2024, 3, 1, 10, 0, tzinfo=UTC))
    ]


def test_numeric_string_is_not_an_integer(cli: Callable[..., Any]) -> None:
    result = cli(singer(schema_msg("s", {"id": {"type": "integer"}}), record("s", {"id": "12"})))
    assert result.returncode == 1
    assert "field 'id'" in result.stderr


def test_uuid_columns_null_in_a_whole_batch_and_mixed(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    """UUIDs are checked a batch at a time: a batch with no UUID at all, and one mixing nulls and forms."""
    props = {"id": {"type": "integer"}, "u": {"type": ["null", "string"], "format": "uuid"}}
    hex_form = "709ddafeed344bfa96f133da607744b8"
    load(
        singer(
            schema_msg("uu", props, ["id"]),
            *[record("uu", {"id": i, "u": None}) for i in range(3)],
        ),
        batch_size_rows=3,
    )
    load(
        singer(
            schema_msg("uu", props, ["id"]),
            record("uu", {"id": 3, "u": hex_form}),
            record("uu", {"id": 4}),
            record("uu", {"id": 5, "u": "709DDAFE-ED34-4BFA-96F1-33DA607744B8"}),
        )
    )
    rows = query(f'SELECT id, u::text FROM "{target_schema}".uu ORDER BY id')
    expected = "709ddafe-ed34-4bfa-96f1-33da607744b8"
    assert rows == [(0, None), (1, None), (2, None), (3, expected), (4, None), (5, expected)]


def test_datetime_and_date_forms_load_as_msgspec_reads_them(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    """Date-times and dates travel as text parsed by PostgreSQL when their shape is the plain one; every
    other form msgspec accepts takes the per-value path. Either way the instant is the one the tap meant."""
    props = {
        "id": {"type": "integer"},
        "at": {"type": ["null", "string"], "format": "date-time"},
        "day": {"type": ["null", "string"], "format": "date"},
        "doc": {"type": ["null", "object", "string"]},
    }
    forms = [
        ("2024-02-29T23:59:59.999999+14:00", datetime.datetime(2024, 2, 29, 9, 59, 59, 999999, tzinfo=UTC)),
        ("2024-03-01 12:00:00-03:30", datetime.datetime(2024, 3, 1, 15, 30, tzinfo=UTC)),
        ("2024-03-01t12:00:00z", datetime.datetime(2024, 3, 1, 12, tzinfo=UTC)),
        ("2024-03-01T12:00:00.1234565Z", datetime.datetime(2024, 3, 1, 12, 0, 0, 123457, tzinfo=UTC)),
        ("2024-03-01T12:00:00.1234564Z", datetime.datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2024-03-01T12:00:00+0100", datetime.datetime(2024, 3, 1, 11, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999Z", datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime.datetime(1, 1, 1, tzinfo=UTC)),
        (None, None),
    ]
    docs: list[Any] = [{"k": None}, None, "null", [1, "two"], 0]
    rows = [
        {"id": i, "at": at, "day": "2024-02-29" if i % 2 else "0001-01-01", "doc": docs[i % len(docs)]}
        for i, (at, _) in enumerate(forms)
    ]
    load(singer(schema_msg("forms", props, ["id"]), *[record("forms", r) for r in rows]))
    got = query(f'SELECT id, at, day, doc::text FROM "{target_schema}".forms ORDER BY id')
    assert [(r[0], r[1]) for r in got] == [(i, expected) for i, (_, expected) in enumerate(forms)]
    assert {r[2] for r in got} == {datetime.date(2024, 2, 29), datetime.date(1, 1, 1)}
    assert [r[3] for r in got[:5]] == ['{"k": null}', None, '"null"', '[1, "two"]', "0"]
