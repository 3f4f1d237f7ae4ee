"""The binary COPY encoders against PostgreSQL itself: for each value, the bytes of every encoder path (the
C extension where it is built, the generated Python loop, the plain reference loop) and what the server's
own `<type>_send` gives for the value's text must agree; so must what they say of an invalid value."""

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
from target_flx.kinds import Kind
from target_flx.reasons import EncodeFailure, Reason

Rec = msgspec.defstruct("Rec", [("f0", Any, None)], kw_only=True, gc=False)
Msg = msgspec.defstruct(
    "Msg", [("record", Rec), ("time_extracted", Any, None), ("version", Any, None)], kw_only=True
)


@pytest.fixture(scope="module")
def pg(database_url: URL) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        yield conn


Encoded = bytes | EncodeFailure


def _paths(messages: list[Any], plan: tuple[PlanColumn, ...]) -> dict[str, Encoded]:
    """The batch through each encoder path: the C one only where the extension is built, the Python ones
    always (they are what a machine without a C compiler runs)."""
    out: dict[str, Encoded] = {}
    if copybin.extension_built():
        out["c"] = copybin.encode(messages, plan)
    copybin.use_python(True)
    try:
        out["python"] = copybin.encode(messages, plan)  # the generated loop (the reference names failures)
    finally:
        copybin.use_python(False)
    out["reference"] = copybin.encode_reference(messages, plan)
    return out


def _one(pg_type: str | int, value: Any) -> bytes | EncodeFailure:
    """What every encoder path gives for one value as a one-column batch (checked to be the same), reduced
    to the value's bytes (b"NULL" for SQL NULL); `pg_type` names the column type, or is the kind itself."""
    plan = (PlanColumn(FIELD, "f0", pg_type if isinstance(pg_type, int) else kind_of(pg_type), None),)
    results = _paths([Msg(record=Rec(f0=value))], plan)
    out: dict[str, bytes | EncodeFailure] = {}
    for path, encoded in results.items():
        if isinstance(encoded, EncodeFailure):
            out[path] = encoded
            continue
        assert encoded.startswith(copybin.HEADER) and encoded.endswith(copybin.TRAILER)
        body = encoded[len(copybin.HEADER) : -len(copybin.TRAILER)]
        assert body[:2] == b"\x00\x01"
        length = int.from_bytes(body[2:6], "big", signed=True)
        assert len(body) == 6 + max(length, 0)
        out[path] = body[6:] if length >= 0 else b"NULL"
    first = next(iter(out.values()))
    assert all(result == first for result in out.values()), out
    return first


def _refused(pg_type: str | int, value: Any) -> EncodeFailure:
    result = _one(pg_type, value)
    assert isinstance(result, EncodeFailure), result
    assert (result.row, result.column) == (0, 0) and result.value is value
    return result


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
    assert _one("numeric", msgspec.Raw(text.encode())) == _server(pg, "numeric_send", "numeric", text)


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
        assert _one("numeric", msgspec.Raw(text.encode())) == bytes(expected), text


@pytest.mark.parametrize("value", [0, -1, 2**53 + 1, -(2**63), 2**64, -(10**30)])
def test_integer_values_in_numeric_columns(pg: psycopg.Connection[Any], value: int) -> None:
    assert _one("numeric", value) == _server(pg, "numeric_send", "numeric", str(value))


@pytest.mark.parametrize("value", [decimal.Decimal("1.10"), decimal.Decimal("-0.000"), 1.25])
def test_other_number_objects_use_the_reference(pg: psycopg.Connection[Any], value: Any) -> None:
    assert _one("numeric", value) == _server(pg, "numeric_send", "numeric", str(value))


@pytest.mark.parametrize("text", ['"12"', "true", "[1]", "{}", '"abc"'])
def test_numeric_rejects_what_is_not_a_number(text: str) -> None:
    assert _refused("numeric", msgspec.Raw(text.encode())).reason is Reason.NOT_A_NUMBER


def test_json_null_in_numeric_and_jsonb_is_sql_null() -> None:
    for pg_type in ("numeric", "jsonb"):
        assert _one(pg_type, msgspec.Raw(b"null")) == b"NULL"


def test_huge_exponent_is_reported_not_sent() -> None:
    assert _refused("numeric", msgspec.Raw(b"1e999999")).reason is Reason.NUMERIC_OUT_OF_RANGE


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
    assert _one("timestamptz", value) == _server(pg, "timestamptz_send", "timestamptz", text)


def test_timestamp_without_zone_and_time(pg: psycopg.Connection[Any]) -> None:
    naive = datetime.datetime(1, 1, 1, 0, 0, 0, 1)
    assert _one("timestamp", naive) == _server(pg, "timestamp_send", "timestamp", naive.isoformat())
    t = datetime.time(23, 59, 59, 999999)
    assert _one("time", t) == _server(pg, "time_send", "time", t.isoformat())


@pytest.mark.parametrize(
    "value", [datetime.date(1, 1, 1), datetime.date(2000, 1, 1), datetime.date(9999, 12, 31)]
)
def test_date_matches_date_send(pg: psycopg.Connection[Any], value: datetime.date) -> None:
    assert _one("date", value) == _server(pg, "date_send", "date", value.isoformat())


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
    assert _one("uuid", text) == _server(pg, "uuid_send", "uuid", text)


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
    assert _refused("uuid", text) == EncodeFailure(0, 0, Reason.NOT_A_UUID, text)


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
    assert _one(pg_type, value) == expected


def test_out_of_range_integer_is_named() -> None:
    assert _refused("smallint", 40_000) == EncodeFailure(0, 0, Reason.OUT_OF_RANGE, 40_000)


def test_lone_surrogate_in_text_is_reported() -> None:
    assert _refused("text", "a\ud800b").reason is Reason.LONE_SURROGATE


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
    results = _paths(messages, plan)
    reference = results["reference"]
    assert isinstance(reference, bytes) and len(results) == (3 if copybin.extension_built() else 2)
    assert all(encoded == reference for encoded in results.values())


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
    assert _one("numeric", value) == _server(pg, "numeric_send", "numeric", text)


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
    assert _one(pg_type, value) == _server(pg, send, pg_type, text)


def test_numeric_rejects_tokens_it_does_not_know() -> None:
    for text in (b"nan", b"Inf", b"+Infinity", b"NaNx"):
        assert _refused("numeric", msgspec.Raw(text)).reason is Reason.NOT_A_NUMBER, text


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
    assert _one("timestamptz", value) == _server(pg, "timestamptz_send", "timestamptz", utc + "+00")
    assert _one("timestamp", value) == _server(pg, "timestamp_send", "timestamp", utc)


@pytest.mark.parametrize(
    ("pg_type", "raw", "literal"),
    [
        ("text[]", b'["a", null, "b\\"c", "", "\\u00e9"]', "ARRAY['a', NULL, 'b\"c', '', 'é']"),
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
    assert _one(pg_type, msgspec.Raw(raw)) == bytes(row[0])


def test_json_null_array_is_sql_null_and_bad_arrays_are_named() -> None:
    assert _one("text[]", msgspec.Raw(b"null")) == b"NULL"
    for pg_type, raw, reason in (
        ("bigint[]", b'["x"]', Reason.NOT_AN_INTEGER),
        ("bigint[]", b"[[1]]", Reason.NESTED_ELEMENT),
        ("text[]", b'{"a": 1}', Reason.NOT_AN_ARRAY),
        ("date[]", b'["x"]', Reason.BAD_ELEMENT),
    ):
        assert _refused(pg_type, msgspec.Raw(raw)).reason is reason, (pg_type, raw)


@pytest.mark.parametrize(
    ("kind", "value", "hex_bytes"),
    [
        (Kind.BYTEA_BASE16, "00ff10", "00ff10"),
        (Kind.BYTEA_BASE16, "0xABCDEF", "abcdef"),
        (Kind.BYTEA_BASE16, "\\x0a", "0a"),
        (Kind.BYTEA_BASE16, "abc", "0abc"),
        (Kind.BYTEA_BASE16, "", ""),
        (Kind.BYTEA_BASE64, "AP8Q", "00ff10"),
        (Kind.BYTEA_BASE64, "aGVsbG8=", "68656c6c6f"),
        (kind_of("bytea"), b"\x00\x01", "0001"),
    ],
)
def test_bytea_matches_byteasend(pg: psycopg.Connection[Any], kind: int, value: Any, hex_bytes: str) -> None:
    assert _one(kind, value) == _server(pg, "byteasend", "bytea", "\\x" + hex_bytes)


def test_bad_encoded_text_is_named() -> None:
    assert _refused(Kind.BYTEA_BASE16, "zz") == EncodeFailure(0, 0, Reason.NOT_BASE16, "zz")
    assert _refused(Kind.BYTEA_BASE64, "a") == EncodeFailure(0, 0, Reason.NOT_BASE64, "a")


def test_json_columns_take_the_text_without_jsonb_version(pg: psycopg.Connection[Any]) -> None:
    text = '{"a": [1, 2.50]}'
    assert _one("json", msgspec.Raw(text.encode())) == _server(pg, "json_send", "json", text)
    assert _one("json", msgspec.Raw(b"null")) == b"NULL"
