"""The binary COPY encoders against PostgreSQL itself: for each value, the C extension's bytes, the
Python reference's bytes and what the server's own `<type>_send` gives for the value's text must agree."""

from __future__ import annotations

import datetime
import decimal
import random
from collections.abc import Iterator
from typing import Any

import msgspec
import psycopg
import pytest
from sqlalchemy.engine import URL

from flx_core.settings import libpq_conninfo
from target_flx import copybin
from target_flx.copybin import CONST, FIELD, PlanColumn, kind_of

pytestmark = pytest.mark.skipif(not copybin.extension_built(), reason="the C extension was not built")

Rec = msgspec.defstruct("Rec", [("f0", Any, None)], kw_only=True, gc=False)
Msg = msgspec.defstruct(
    "Msg", [("record", Rec), ("time_extracted", Any, None), ("version", Any, None)], kw_only=True
)


@pytest.fixture(scope="module")
def pg(database_url: URL) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        yield conn


def _both(
    pg_type: str | int, value: Any
) -> tuple[bytes | tuple[int, int, str], bytes | tuple[int, int, str]]:
    """(C, Python) encodings of one value as a one-column batch, reduced to the value's bytes; `pg_type`
    names the column type, or is the encoder kind itself."""
    plan = (PlanColumn(FIELD, "f0", pg_type if isinstance(pg_type, int) else kind_of(pg_type), None),)
    messages = [Msg(record=Rec(f0=value))]
    out: list[bytes | tuple[int, int, str]] = []
    for python in (False, True):
        copybin.use_python(python)
        try:
            encoded = copybin.encode(messages, plan)
        finally:
            copybin.use_python(False)
        if isinstance(encoded, tuple):
            out.append(encoded)
            continue
        assert encoded.startswith(copybin.HEADER) and encoded.endswith(copybin.TRAILER)
        body = encoded[len(copybin.HEADER) : -len(copybin.TRAILER)]
        assert body[:2] == b"\x00\x01"
        length = int.from_bytes(body[2:6], "big", signed=True)
        assert len(body) == 6 + max(length, 0)
        out.append(body[6:] if length >= 0 else b"NULL")
    return out[0], out[1]


def _server(pg: psycopg.Connection[Any], send: str, pg_type: str, text: str) -> bytes:
    row = pg.execute(f"SELECT {send}(%s::{pg_type})", (text,)).fetchone()
    assert row is not None
    return bytes(row[0])


NUMBERS = [
    "0",
    "-0",
    "0.000",
    "-0.0",
    "1",
    "-1",
    "10000",
    "9999",
    "12345678",
    "1234.5678",
    "-1234.5678",
    "0.0015",
    "0.00000001",
    "1.50",
    "100.0100",
    "1e3",
    "1E+3",
    "1.5e-3",
    "-2.5E-10",
    "9007199254740993",
    "123456789012345678901234567890",
    "0.123456789012345678901234567890",
    "-99999999999999999999.99999999999999999999",
    "1e-300",
    "4.2e300",
    "18446744073709551616",
]


@pytest.mark.parametrize("text", NUMBERS)
def test_numeric_matches_numeric_send(pg: psycopg.Connection[Any], text: str) -> None:
    c_bytes, py_bytes = _both("numeric", msgspec.Raw(text.encode()))
    assert c_bytes == py_bytes == _server(pg, "numeric_send", "numeric", text)


def test_numeric_random_texts_match(pg: psycopg.Connection[Any]) -> None:
    rng = random.Random(7)
    texts = []
    for _ in range(400):
        whole = str(rng.randrange(0, 10 ** rng.randrange(1, 25)))
        frac = "".join(rng.choice("0123456789") for _ in range(rng.randrange(0, 12)))
        text = ("-" if rng.random() < 0.3 else "") + whole + (f".{frac}" if frac else "")
        if rng.random() < 0.3:
            text += f"e{rng.randrange(-40, 40)}"
        texts.append(text)
    server = pg.execute(
        "SELECT array_agg(numeric_send(t::numeric) ORDER BY n)"
        " FROM unnest(%s::text[]) WITH ORDINALITY AS u(t, n)",
        (texts,),
    ).fetchone()
    assert server is not None
    for text, expected in zip(texts, server[0], strict=True):
        c_bytes, py_bytes = _both("numeric", msgspec.Raw(text.encode()))
        assert c_bytes == py_bytes == bytes(expected), text


@pytest.mark.parametrize("value", [0, -1, 2**53 + 1, -(2**63), 2**64, -(10**30)])
def test_integer_values_in_numeric_columns(pg: psycopg.Connection[Any], value: int) -> None:
    c_bytes, py_bytes = _both("numeric", value)
    assert c_bytes == py_bytes == _server(pg, "numeric_send", "numeric", str(value))


@pytest.mark.parametrize("value", [decimal.Decimal("1.10"), decimal.Decimal("-0.000"), 1.25])
def test_other_number_objects_use_the_reference(pg: psycopg.Connection[Any], value: Any) -> None:
    c_bytes, py_bytes = _both("numeric", value)
    assert c_bytes == py_bytes == _server(pg, "numeric_send", "numeric", str(value))


@pytest.mark.parametrize("text", ['"12"', "true", "[1]", "{}", '"abc"'])
def test_numeric_rejects_what_is_not_a_number(text: str) -> None:
    c_result, py_result = _both("numeric", msgspec.Raw(text.encode()))
    assert isinstance(c_result, tuple) and isinstance(py_result, tuple)
    assert c_result[:2] == py_result[:2] == (0, 0)
    assert "Expected a number" in c_result[2] and "Expected a number" in py_result[2]


def test_json_null_in_numeric_and_jsonb_is_sql_null() -> None:
    for pg_type in ("numeric", "jsonb"):
        assert _both(pg_type, msgspec.Raw(b"null")) == (b"NULL", b"NULL")


def test_huge_exponent_is_reported_not_sent() -> None:
    c_result, py_result = _both("numeric", msgspec.Raw(b"1e999999"))
    assert isinstance(c_result, tuple) and c_result == py_result
    assert "out of range" in c_result[2]


ZONES = [datetime.UTC, datetime.timezone(datetime.timedelta(hours=5, minutes=45))]
TIMESTAMPS = [
    datetime.datetime(2023, 3, 26, 1, 30, 0, 123456, tzinfo=datetime.UTC),
    datetime.datetime(
        2023, 3, 26, 1, 30, 0, 999999, tzinfo=datetime.timezone(datetime.timedelta(hours=-5, minutes=-30))
    ),
    datetime.datetime(1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=14))),
    datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.UTC),
    datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone(datetime.timedelta(hours=13))),
    datetime.datetime(2024, 2, 29, 12, 0),
]


@pytest.mark.parametrize("value", TIMESTAMPS, ids=str)
def test_timestamptz_matches_timestamptz_send(pg: psycopg.Connection[Any], value: datetime.datetime) -> None:
    text = value.isoformat() + ("" if value.tzinfo else "+00:00")
    c_bytes, py_bytes = _both("timestamptz", value)
    assert c_bytes == py_bytes == _server(pg, "timestamptz_send", "timestamptz", text)


def test_timestamp_without_zone_and_time(pg: psycopg.Connection[Any]) -> None:
    naive = datetime.datetime(1, 1, 1, 0, 0, 0, 1)
    assert _both("timestamp", naive) == (_server(pg, "timestamp_send", "timestamp", naive.isoformat()),) * 2
    t = datetime.time(23, 59, 59, 999999)
    assert _both("time", t) == (_server(pg, "time_send", "time", t.isoformat()),) * 2


@pytest.mark.parametrize(
    "value", [datetime.date(1, 1, 1), datetime.date(2000, 1, 1), datetime.date(9999, 12, 31)]
)
def test_date_matches_date_send(pg: psycopg.Connection[Any], value: datetime.date) -> None:
    assert _both("date", value) == (_server(pg, "date_send", "date", value.isoformat()),) * 2


@pytest.mark.parametrize(
    "text",
    [
        "123e4567-e89b-12d3-a456-426614174000",
        "123E4567-E89B-12D3-A456-426614174000",
        "123e4567e89b12d3a456426614174000",
        "123e4567-e89b12d3-a456426614174000",
    ],
)
def test_uuid_forms_the_schema_allows(pg: psycopg.Connection[Any], text: str) -> None:
    assert _both("uuid", text) == (_server(pg, "uuid_send", "uuid", text),) * 2


@pytest.mark.parametrize(
    "text",
    [
        "123e4567-e89b-12d3-a456-42661417400",
        "123e4567-e89b-12d3-a456-4266141740000",
        "123e4567--e89b-12d3-a456-426614174000",
        "-123e4567e89b12d3a456426614174000",
        "123e4567-e89b-12d3-a456-42661417400g",
        "{123e4567-e89b-12d3-a456-426614174000}",
        "123e-4567-e89b-12d3-a456-426614174000",
    ],
)
def test_uuid_rejects_other_text(text: str) -> None:
    c_result, py_result = _both("uuid", text)
    assert isinstance(c_result, tuple) and isinstance(py_result, tuple)
    assert c_result == py_result == (0, 0, "not a UUID")


@pytest.mark.parametrize(
    ("pg_type", "value", "send", "text"),
    [
        ("smallint", -32768, "int2send", "-32768"),
        ("integer", 2**31 - 1, "int4send", str(2**31 - 1)),
        ("bigint", -(2**63), "int8send", str(-(2**63))),
        ("double precision", 0.1, "float8send", "0.1"),
        ("real", 1.5, "float4send", "1.5"),
        ("boolean", True, "boolsend", "true"),
        ("text", "Grüße 東京 🚚 \t\n\\", "textsend", "Grüße 東京 🚚 \t\n\\"),
        ("text", "", "textsend", ""),
        ("jsonb", msgspec.Raw(b'{"a": [1, 2.50, "x"]}'), "jsonb_send", '{"a": [1, 2.50, "x"]}'),
    ],
)
def test_scalars(pg: psycopg.Connection[Any], pg_type: str, value: Any, send: str, text: str) -> None:
    expected = _server(pg, send, pg_type, text)
    if pg_type == "jsonb":  # the server normalizes jsonb text; we send the tap's text with version 1
        expected = b"\x01" + b'{"a": [1, 2.50, "x"]}'
    assert _both(pg_type, value) == (expected, expected)


def test_out_of_range_integer_is_named() -> None:
    c_result, py_result = _both("smallint", 40_000)
    assert c_result == py_result == (0, 0, "integer out of range for its column")


def test_lone_surrogate_in_text_is_reported() -> None:
    c_result, py_result = _both("text", "a\ud800b")
    assert isinstance(c_result, tuple) and c_result == py_result


def test_whole_batch_with_metadata_sources_matches_reference() -> None:
    """Several columns, constants and pre-encoded bytes (how batch metadata is passed), many rows."""
    Row = msgspec.defstruct(
        "Row", [("f0", int), ("f1", Any, None), ("f2", Any, None)], kw_only=True, gc=False
    )
    Message = msgspec.defstruct(
        "Message", [("record", Row), ("time_extracted", Any, None), ("version", Any, None)], kw_only=True
    )
    received = copybin.encode_value(
        kind_of("timestamptz"), datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    )
    extracted = {None: None, "x": received}
    plan = (
        PlanColumn(FIELD, "f0", kind_of("bigint"), None),
        PlanColumn(FIELD, "f1", kind_of("text"), str),
        PlanColumn(FIELD, "f2", kind_of("numeric"), None),
        PlanColumn(copybin.EXTRACTED, extracted, kind_of("timestamptz"), None),
        PlanColumn(CONST, received, kind_of("timestamptz"), None),
        PlanColumn(CONST, 17, kind_of("bigint"), None),
        PlanColumn(copybin.VERSION, None, kind_of("bigint"), None),
    )
    messages = [
        Message(
            record=Row(f0=i, f1=i if i % 3 else None, f2=msgspec.Raw(f"{i}.25".encode()) if i % 2 else None),
            time_extracted="x" if i % 4 == 0 else None,
            version=i if i % 5 == 0 else None,
        )
        for i in range(1000)
    ]
    c_bytes = copybin.encode(messages, plan)
    copybin.use_python(True)
    try:
        py_bytes = copybin.encode(messages, plan)
    finally:
        copybin.use_python(False)
    assert isinstance(c_bytes, bytes) and c_bytes == py_bytes
    # the generated Python loop and the plain reference loop agree as well
    reference = copybin._encode_python(messages, plan, copybin._Fallback(plan))
    assert reference == c_bytes


NAN_OFFSET = datetime.timezone(-datetime.timedelta(hours=4, minutes=56, seconds=2))
AMSTERDAM_LMT = datetime.timezone(datetime.timedelta(minutes=19, seconds=32))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (msgspec.Raw(b"NaN"), "NaN"),
        (msgspec.Raw(b"Infinity"), "Infinity"),
        (msgspec.Raw(b"-Infinity"), "-Infinity"),
        (decimal.Decimal("NaN"), "NaN"),
        (decimal.Decimal("-Infinity"), "-Infinity"),
        (float("inf"), "Infinity"),
    ],
)
def test_numeric_special_values_match_numeric_send(
    pg: psycopg.Connection[Any], value: Any, text: str
) -> None:
    assert _both("numeric", value) == (_server(pg, "numeric_send", "numeric", text),) * 2


@pytest.mark.parametrize(
    ("pg_type", "send", "value", "text"),
    [
        ("double precision", "float8send", decimal.Decimal("NaN"), "NaN"),
        ("double precision", "float8send", decimal.Decimal("-Infinity"), "-Infinity"),
        ("real", "float4send", decimal.Decimal("Infinity"), "Infinity"),
    ],
)
def test_float_special_values(
    pg: psycopg.Connection[Any], pg_type: str, send: str, value: Any, text: str
) -> None:
    assert _both(pg_type, value) == (_server(pg, send, pg_type, text),) * 2


def test_numeric_rejects_tokens_it_does_not_know() -> None:
    for text in (b"nan", b"Inf", b"+Infinity", b"NaNx"):
        c_result, py_result = _both("numeric", msgspec.Raw(text))
        assert isinstance(c_result, tuple) and isinstance(py_result, tuple), text


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        (datetime.datetime(1, 1, 1, 19, 3, 58, tzinfo=NAN_OFFSET), "0001-01-02 00:00:00"),
        (datetime.datetime(1900, 1, 1, tzinfo=AMSTERDAM_LMT), "1899-12-31 23:40:28"),
        (datetime.datetime(1, 1, 1, tzinfo=AMSTERDAM_LMT), "0001-12-31 23:40:28 BC"),
        (datetime.datetime(2024, 6, 1, 12, 0, 0, 5, tzinfo=datetime.UTC), "2024-06-01 12:00:00.000005"),
    ],
    ids=str,
)
def test_timestamps_with_offsets_are_utc_instants(
    pg: psycopg.Connection[Any], value: datetime.datetime, utc: str
) -> None:
    """Both column kinds: timestamptz holds the instant, timestamp (without time zone) its UTC wall time."""
    assert _both("timestamptz", value) == (_server(pg, "timestamptz_send", "timestamptz", utc + "+00"),) * 2
    assert _both("timestamp", value) == (_server(pg, "timestamp_send", "timestamp", utc),) * 2


@pytest.mark.parametrize(
    ("pg_type", "raw", "literal"),
    [
        ("text[]", b'["a", null, "b\\"c", "", "\u00e9"]', "ARRAY['a', NULL, 'b\"c', '', 'é']"),
        ("text[]", b'[1, 2.50, true, {"k": [1]}]', "ARRAY['1', '2.50', 'true', '{\"k\":[1]}']"),
        ("text[]", b"[]", "'{}'"),
        ("character varying[]", b'["x", "y"]', "ARRAY['x', 'y']"),
        ("bigint[]", b"[1, -9223372036854775808, null, 2.0]", "ARRAY[1, -9223372036854775808, NULL, 2]"),
        ("integer[]", b"[7]", "ARRAY[7]"),
        ("numeric[]", b"[1.50, -2, 1e3]", "ARRAY[1.50, -2, 1000]"),
        ("double precision[]", b"[0.1, 2]", "ARRAY[0.1, 2]"),
        ("boolean[]", b"[true, false, null]", "ARRAY[true, false, NULL]"),
        ("date[]", b'["2024-02-29", "0001-01-01"]', "ARRAY['2024-02-29', '0001-01-01']"),
        (
            "timestamp with time zone[]",
            b'["2024-02-29T12:00:00+02:00"]',
            "ARRAY['2024-02-29T10:00:00+00']",
        ),
        (
            "uuid[]",
            b'["709ddafe-ed34-4bfa-96f1-33da607744b8"]',
            "ARRAY['709ddafe-ed34-4bfa-96f1-33da607744b8']",
        ),
    ],
)
def test_arrays_match_array_send(pg: psycopg.Connection[Any], pg_type: str, raw: bytes, literal: str) -> None:
    row = pg.execute(f"SELECT array_send(({literal})::{pg_type})").fetchone()
    assert row is not None
    assert _both(pg_type, msgspec.Raw(raw)) == (bytes(row[0]),) * 2


def test_json_null_array_is_sql_null_and_bad_arrays_are_named() -> None:
    assert _both("text[]", msgspec.Raw(b"null")) == (b"NULL", b"NULL")
    for pg_type, raw in (("bigint[]", b'["x"]'), ("bigint[]", b"[[1]]"), ("text[]", b'{"a": 1}')):
        c_result, py_result = _both(pg_type, msgspec.Raw(raw))
        assert isinstance(c_result, tuple) and c_result == py_result, (pg_type, raw)


@pytest.mark.parametrize(
    ("kind", "value", "hex_bytes"),
    [
        (copybin.BYTEA_BASE16, "00ff10", "00ff10"),
        (copybin.BYTEA_BASE16, "0xABCDEF", "abcdef"),
        (copybin.BYTEA_BASE16, "\\x0a", "0a"),
        (copybin.BYTEA_BASE16, "abc", "0abc"),
        (copybin.BYTEA_BASE16, "", ""),
        (copybin.BYTEA_BASE64, "AP8Q", "00ff10"),
        (copybin.BYTEA_BASE64, "aGVsbG8=", "68656c6c6f"),
        (kind_of("bytea"), b"\x00\x01", "0001"),
    ],
)
def test_bytea_matches_byteasend(pg: psycopg.Connection[Any], kind: int, value: Any, hex_bytes: str) -> None:
    assert _both(kind, value) == (_server(pg, "byteasend", "bytea", "\\x" + hex_bytes),) * 2


def test_bad_encoded_text_is_named() -> None:
    assert _both(copybin.BYTEA_BASE16, "zz") == ((0, 0, "Expected base16 (hex) text"),) * 2
    assert _both(copybin.BYTEA_BASE64, "a") == ((0, 0, "Expected base64 text"),) * 2


def test_json_columns_take_the_text_without_jsonb_version(pg: psycopg.Connection[Any]) -> None:
    text = '{"a": [1, 2.50]}'
    assert _both("json", msgspec.Raw(text.encode())) == (_server(pg, "json_send", "json", text),) * 2
    assert _both("json", msgspec.Raw(b"null")) == (b"NULL", b"NULL")
