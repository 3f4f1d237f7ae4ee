"""Values as real taps write them: bounds beyond int64, UTC offsets with seconds, bare NaN/Infinity tokens,
nullable formats as anyOf/oneOf, contentEncoding, and errors that show the value."""

from __future__ import annotations

import datetime
import decimal
import json
from collections.abc import Callable
from typing import Any

import pytest

from target_flx import codec as codec_module
from target_flx.codec import Column, RecordCodec
from target_flx.types import column_type, resolved
from tests.target.singer_io import record, schema_msg, singer, state

pytestmark = pytest.mark.usefixtures("encoder")

UTC = datetime.UTC
UNSIGNED_BIGINT = {"type": ["null", "integer"], "minimum": 0, "maximum": 18446744073709551615}


def _error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("target-flx: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def _types(query: Callable[..., Any], schema: str, table: str) -> dict[str, str]:
    return dict(
        query(
            "SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns c "
            "JOIN pg_attribute a ON a.attname = c.column_name "
            "AND a.attrelid = format('%%I.%%I', c.table_schema, c.table_name)::regclass "
            "WHERE table_schema = %s AND table_name = %s",
            schema,
            table,
        )
    )


# -- integer bounds beyond int64 ------------------------------------------------------------------------


def test_unsigned_bigint_bounds_load_into_numeric(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    props = {"id": {"type": "integer"}, "u": UNSIGNED_BIGINT, "low": {"type": "integer", "minimum": -(2**70)}}
    values = [0, 2**63 - 1, 2**63, 2**64 - 1, None]
    rows = [{"id": i, "u": v, "low": -(2**70) + i} for i, v in enumerate(values)]
    load(singer(schema_msg("ub", props, ["id"]), *[record("ub", r) for r in rows]))
    assert _types(query, target_schema, "ub")["u"] == "numeric"
    got = query(f'SELECT u, low FROM "{target_schema}".ub ORDER BY id')
    assert [r[0] for r in got] == values
    assert [r[1] for r in got] == [-(2**70) + i for i in range(5)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2**64, "<= 18446744073709551615, got 18446744073709551616"), (-1, ">= 0, got -1")],
)
def test_bounds_beyond_int64_are_checked_exactly(cli: Callable[..., Any], value: int, expected: str) -> None:
    text = singer(
        schema_msg("ub", {"id": {"type": "integer"}, "u": UNSIGNED_BIGINT}, ["id"]),
        record("ub", {"id": 1, "u": 2**64 - 1}),
        record("ub", {"id": 2, "u": value}),
    )
    result = cli(text)
    assert result.returncode == 1
    line = _error_line(result.stderr)
    assert "stream 'ub'" in line and "line 3" in line and "field 'u'" in line
    assert expected in line


def test_exclusive_bounds_beyond_int64(cli: Callable[..., Any]) -> None:
    props = {"id": {"type": "integer"}, "u": {"type": "integer", "exclusiveMaximum": 2**64}}
    ok = cli(singer(schema_msg("ex", props), record("ex", {"id": 1, "u": 2**64 - 1})))
    assert ok.returncode == 0, ok.stderr
    bad = cli(singer(schema_msg("ex", props), record("ex", {"id": 2, "u": 2**64})))
    assert "< 18446744073709551616, got 18446744073709551616" in _error_line(bad.stderr)


# -- UTC offsets with seconds ---------------------------------------------------------------------------


def test_offsets_with_seconds_are_the_exact_instant(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    props = {"id": {"type": "integer"}, "at": {"type": ["null", "string"], "format": "date-time"}}
    forms = [
        "0001-01-01T19:03:58-04:56:02",  # America/New_York's local mean time
        "1900-01-01T00:00:00+00:19:32",  # Europe/Amsterdam's
        "1900-01-01T00:00:00.250000+00:19:32",
        "2024-03-01T12:00:00+01:00",
        "0001-01-01T00:00:00+00:19:32",  # before year 1 in UTC
    ]
    rows = [{"id": i, "at": at} for i, at in enumerate(forms)]
    load(singer(schema_msg("lmt", props, ["id"]), *[record("lmt", r) for r in rows]), batch_size_rows=3)
    got = query(f'SELECT id, at::text FROM "{target_schema}".lmt ORDER BY id')
    assert got == [
        (0, "0001-01-02 00:00:00+00"),
        (1, "1899-12-31 23:40:28+00"),
        (2, "1899-12-31 23:40:28.25+00"),
        (3, "2024-03-01 11:00:00+00"),
        (4, "0001-12-31 23:40:28+00 BC"),
    ]


def test_offset_with_seconds_in_a_timestamp_column_and_time_extracted(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    props = {
        "id": {"type": "integer"},
        "at": {"type": ["null", "string"], "format": "date-time", "x-sql-datatype": "timestamp"},
    }
    load(
        singer(
            schema_msg("lmt2", props),
            record(
                "lmt2",
                {"id": 1, "at": "1900-01-01T00:00:00+00:19:32"},
                time_extracted="1900-01-01T00:00:00+00:19:32",
            ),
        )
    )
    assert query(f'SELECT at, _sdc_extracted_at FROM "{target_schema}".lmt2') == [
        (datetime.datetime(1899, 12, 31, 23, 40, 28), datetime.datetime(1899, 12, 31, 23, 40, 28, tzinfo=UTC))
    ]


# -- bare NaN / Infinity tokens -------------------------------------------------------------------------

SPECIAL_PROPS = {
    "id": {"type": "integer"},
    "n": {"type": ["null", "number"]},
    "f": {"type": ["null", "number"], "x-sql-datatype": "double precision"},
    "r": {"type": ["null", "number"], "x-sql-datatype": "real"},
    "t": {"type": ["null", "string"]},
}


def _python_json_lines(stream: str, rows: list[dict[str, Any]]) -> str:
    """RECORD lines as Python's json writes them (bare NaN, Infinity, -Infinity)."""
    return "".join(json.dumps({"type": "RECORD", "stream": stream, "record": r}) + "\n" for r in rows)


@pytest.mark.parametrize("batch_size_rows", [1, 4, 10_000])
def test_bare_nan_and_infinity_load_exactly(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str, batch_size_rows: int
) -> None:
    nan, inf = float("nan"), float("inf")
    rows: list[dict[str, Any]] = [
        {"id": 1, "n": 1.5, "f": 2.5, "r": 0.5, "t": "NaN in text, Infinity too"},
        {"id": 2, "n": nan, "f": nan, "r": nan, "t": "a"},
        {"id": 3, "n": inf, "f": -inf, "r": inf, "t": None},
        {"id": 4, "n": -inf, "f": inf, "r": -inf, "t": "NaN"},
        {"id": 5, "n": 7, "f": None, "r": None, "t": "Infinity"},
    ]
    text = singer(schema_msg("sp", SPECIAL_PROPS, ["id"])) + _python_json_lines("sp", rows)
    text += singer(state({"done": 1}))
    result = load(text, batch_size_rows=batch_size_rows)
    assert result.states == [{"done": 1}]
    got = query(f'SELECT id, n::text, f::text, r::text, t FROM "{target_schema}".sp ORDER BY id')
    assert got == [
        (1, "1.5", "2.5", "0.5", "NaN in text, Infinity too"),
        (2, "NaN", "NaN", "NaN", "a"),
        (3, "Infinity", "-Infinity", "Infinity", None),
        (4, "-Infinity", "Infinity", "-Infinity", "NaN"),
        (5, "7", None, None, "Infinity"),
    ]


def test_every_line_with_a_token_is_one_pass(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    rows = [{"id": i, "n": float("nan") if i % 2 else float("inf")} for i in range(3000)]
    load(singer(schema_msg("many", SPECIAL_PROPS, ["id"])) + _python_json_lines("many", rows))
    assert query(f'SELECT n::text, count(*) FROM "{target_schema}".many GROUP BY 1 ORDER BY 1') == [
        ("Infinity", 1500),
        ("NaN", 1500),
    ]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"id": float("nan")}, ["field 'id'", "NaN", "bigint"]),
        ({"id": 2, "doc": {"x": float("-inf")}}, ["field 'doc'", "-Infinity"]),
        ({"id": 2, "t": float("inf")}, ["field 't'", "Infinity"]),
    ],
    ids=["integer", "inside-json", "text"],
)
def test_tokens_a_column_cannot_hold_are_named(
    cli: Callable[..., Any], row: dict[str, Any], expected: list[str]
) -> None:
    props = {**SPECIAL_PROPS, "doc": {"type": ["null", "object"]}}
    text = singer(schema_msg("bad", props), record("bad", {"id": 1})) + _python_json_lines("bad", [row])
    result = cli(text)
    assert result.returncode == 1
    line = _error_line(result.stderr)
    assert "stream 'bad'" in line and "line 3" in line
    for part in expected:
        assert part in line, line


# -- anyOf / oneOf with formats -------------------------------------------------------------------------


def test_any_of_and_one_of_with_formats_are_typed_as_the_plain_form(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    props = {
        "id": {"type": "integer"},
        "at": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
        "day": {"oneOf": [{"type": "null"}, {"type": "string", "format": "date"}]},
        "u": {"anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]},
        "big": {"anyOf": [UNSIGNED_BIGINT, {"type": "null"}]},
        "n": {"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "kept"},
        "mixed": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    }
    load(
        singer(
            schema_msg("any", props, ["id"]),
            record(
                "any",
                {
                    "id": 1,
                    "at": "2024-03-01T12:00:00+02:00",
                    "day": "2024-02-29",
                    "u": "709ddafe-ed34-4bfa-96f1-33da607744b8",
                    "big": 2**64 - 1,
                    "n": 5,
                    "mixed": 3,
                },
            ),
            record(
                "any", {"id": 2, "at": None, "day": None, "u": None, "big": None, "n": None, "mixed": "x"}
            ),
        )
    )
    types = _types(query, target_schema, "any")
    assert types["at"] == "timestamp with time zone"
    assert types["day"] == "date"
    assert types["u"] == "uuid"
    assert types["big"] == "numeric"
    assert types["n"] == "bigint"
    assert types["mixed"] == "text"
    got = query(f'SELECT at, day, u::text, big, n, mixed FROM "{target_schema}".any ORDER BY id')
    assert got == [
        (
            datetime.datetime(2024, 3, 1, 10, tzinfo=UTC),
            datetime.date(2024, 2, 29),
            "709ddafe-ed34-4bfa-96f1-33da607744b8",
            2**64 - 1,
            5,
            "3",
        ),
        (None, None, None, None, None, "x"),
    ]


def test_any_of_without_null_stays_required(cli: Callable[..., Any]) -> None:
    props: dict[str, Any] = {
        "id": {"type": "integer"},
        "at": {"anyOf": [{"type": "string", "format": "date-time"}]},
    }
    assert resolved(props["at"]) == {"type": "string", "format": "date-time"}
    result = cli(singer(schema_msg("req", props), record("req", {"id": 1, "at": None})))
    assert result.returncode == 1
    assert "field 'at'" in _error_line(result.stderr)


# -- contentEncoding ------------------------------------------------------------------------------------


def test_content_encoding_types() -> None:
    hex_schema = {"type": ["null", "string"], "contentEncoding": "base16"}
    b64_schema = {"anyOf": [{"type": "string", "contentEncoding": "base64"}, {"type": "null"}]}
    assert column_type(hex_schema).pg_type == "text"  # the setting is off by default, as in the reference
    assert column_type(hex_schema, interpret_content_encoding=True).pg_type == "bytea"
    assert column_type(b64_schema, interpret_content_encoding=True).json_kind == "base64"


def test_content_encoding_loads_bytea(
    load: Callable[..., Any], query: Callable[..., Any], target_schema: str
) -> None:
    props = {
        "id": {"type": "integer"},
        "h": {"type": ["null", "string"], "contentEncoding": "base16"},
        "b": {"type": ["null", "string"], "contentEncoding": "base64"},
    }
    rows = [
        {"id": 1, "h": "00ff10", "b": "AP8Q"},
        {"id": 2, "h": "0xABCDEF", "b": ""},
        {"id": 3, "h": "\\x0a", "b": None},
        {"id": 4, "h": "abc", "b": "aGVsbG8="},  # an odd digit count, as MeltanoLabs reads it
        {"id": 5, "h": "DEAD", "b": None},
    ]
    text = singer(schema_msg("enc", props, ["id"]), *[record("enc", r) for r in rows])
    load(text, interpret_content_encoding=True)
    assert _types(query, target_schema, "enc")["h"] == "bytea"
    got = query(f'SELECT h, b FROM "{target_schema}".enc ORDER BY id')
    assert [(bytes(h) if h is not None else None, bytes(b) if b is not None else None) for h, b in got] == [
        (b"\x00\xff\x10", b"\x00\xff\x10"),
        (b"\xab\xcd\xef", b""),
        (b"\n", None),
        (b"\x0a\xbc", b"hello"),
        (b"\xde\xad", None),
    ]


@pytest.mark.parametrize(("prop", "value"), [("h", "not hex"), ("b", "no base64!")])
def test_bad_content_encoding_is_named(cli: Callable[..., Any], prop: str, value: str, encoder: str) -> None:
    props = {
        "id": {"type": "integer"},
        "h": {"type": ["null", "string"], "contentEncoding": "base16"},
        "b": {"type": ["null", "string"], "contentEncoding": "base64"},
    }
    text = singer(schema_msg("enc", props), record("enc", {"id": 1, prop: value}))
    result = cli(text, interpret_content_encoding=True)
    line = _error_line(result.stderr)
    assert f"field '{prop}'" in line and json.dumps(value) in line


# -- errors show the value ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "rec", "expected"),
    [
        (
            {"id": {"type": "integer"}, "amount": {"type": ["null", "number"]}},
            {"id": 1, "amount": "not-a-number"},
            "field 'amount': Expected a number, got \"not-a-number\"",
        ),
        (
            {"id": {"type": "integer"}},
            {"id": "two"},
            "field 'id': Expected int, got str \"two\"",
        ),
        (
            {"id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}},
            {"id": 1, "at": "yesterday"},
            'got "yesterday"',
        ),
        (
            {"id": {"type": "integer"}, "small": {"type": "integer", "maximum": 10}},
            {"id": 1, "small": 11},
            "Expected int <= 10, got 11",
        ),
        (
            {"id": {"type": "integer"}, "u": {"type": ["null", "string"], "format": "uuid"}},
            {"id": 1, "u": "709ddafe-ed34-4bfa-96f1-33da607744bg"},
            'got "709ddafe-ed34-4bfa-96f1-33da607744bg"',
        ),
    ],
    ids=["number", "integer", "date-time", "bound", "uuid"],
)
def test_errors_show_the_value(
    cli: Callable[..., Any], props: dict[str, Any], rec: dict[str, Any], expected: str
) -> None:
    padding = [record("e", {"id": i}) for i in range(10, 14)] if "amount" in props else []
    result = cli(singer(schema_msg("e", props), *padding, record("e", rec)))
    assert result.returncode == 1
    line = _error_line(result.stderr)
    assert f"line {2 + len(padding)}" in line and expected in line, line


def test_error_value_is_cut_and_secrets_are_not_shown(cli: Callable[..., Any]) -> None:
    props = {
        "id": {"type": "integer"},
        "n": {"type": ["null", "number"]},
        "pin": {"type": ["null", "integer"], "secret": True, "writeOnly": True},
    }
    long = "x" * 500
    result = cli(singer(schema_msg("cut", props), record("cut", {"id": 1, "n": long})))
    line = _error_line(result.stderr)
    assert '"xxxxxxxx' in line and long not in line and len(line) < 250
    result = cli(singer(schema_msg("cut", props), record("cut", {"id": 1, "pin": "1234-secret"})))
    line = _error_line(result.stderr)
    assert "field 'pin'" in line and "1234-secret" not in line


def test_decode_failure_messages_in_process() -> None:
    """The codec alone: the failure names index, field and value."""
    columns = [Column("id", "bigint", "id", "integer"), Column("n", "numeric", "n", "number")]
    props: dict[str, dict[str, Any]] = {"id": {"type": "integer"}, "n": {"type": ["null", "number"]}}
    codec = RecordCodec("s", columns, props, ["id"], [], validate=True)
    lines = [
        b'{"type":"RECORD","stream":"s","record":{"id":1,"n":1.5}}',
        b'{"type":"RECORD","stream":"s","record":{"id":2,"n":NaN}}',
        b'{"type":"RECORD","stream":"s","record":{"id":"3"}}',
    ]
    messages, failure = codec.decode(lines)
    assert len(messages) == 2 and bytes(messages[1].record.f1) == b"NaN"
    assert failure is not None and (failure.index, failure.field) == (2, "id")
    assert failure.message == 'Expected int, got str "3"'
    assert codec_module._shown(decimal.Decimal("-Infinity")) == "-Infinity"
