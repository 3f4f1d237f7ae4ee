"""Failures as data: msgspec's text read once into fields, the words made from the fields, and the lines a
batch reports for bad values (exactly as before failures were data), with either encoder."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from target_flx.batch import BatchBuilder
from target_flx.codec import COMPUTED_METADATA, BatchMeta, Column, RecordCodec
from target_flx.failures import Failure, from_msgspec
from target_flx.reasons import Reason
from target_flx.types import UUID_PATTERN, column_type


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Expected `int`, got `str` - at `$[2].record.id`",
            Failure(2, "id", Reason.SCHEMA, "Expected int", "str"),
        ),
        ("Expected `int` <= 32767 - at `$[0].record.q`", Failure(0, "q", Reason.BOUND, "<= 32767")),
        (
            "Object missing required field `id` - at `$[3].record`",
            Failure(3, "id", Reason.MISSING_FIELD, "id"),
        ),
        (
            "Invalid RFC3339 encoded datetime - at `$[1].record.at`",
            Failure(1, "at", Reason.SCHEMA, "Invalid RFC3339 encoded datetime"),
        ),
    ],
)
def test_msgspec_text_is_read_into_fields(text: str, expected: Failure) -> None:
    assert from_msgspec(text) == expected


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (Failure(0, "id", Reason.SCHEMA, "Expected int", "str", '"two"'), 'Expected int, got str "two"'),
        (Failure(0, "id", Reason.SCHEMA, "Expected int", "str"), "Expected int, got str"),
        (Failure(0, "q", Reason.BOUND, "<= 10", shown="11"), "Expected int <= 10, got 11"),
        (
            Failure(0, "u", Reason.NOT_A_UUID, shown='"x"'),
            f'Expected str matching regex {UUID_PATTERN!r}, got "x"',
        ),
        (Failure(0, "n", Reason.NOT_A_NUMBER, shown="null"), "Expected a number, got null"),
        (
            Failure(0, "n", Reason.SPECIAL_NUMBER, "bigint", "integer", "NaN"),
            "NaN does not fit a bigint column (a integer property)",
        ),
        (Failure(0, None, Reason.TOO_DEEP), "record nested too deeply to decode"),
    ],
)
def test_words_are_made_from_the_fields(failure: Failure, message: str) -> None:
    assert failure.message == message


INT = {"type": "integer"}
UUID = {"type": ["null", "string"], "format": "uuid"}
NUMBER = {"type": ["null", "number"]}
INTEGER = {"type": ["null", "integer"]}
ARRAY = {"type": ["null", "array"]}
BAD_UUID = b'{"id":1,"u":"709ddafe-ed34-4bfa-96f1-33da607744bg"}'
REGEX = f"Expected str matching regex {UUID_PATTERN!r}"
KEY = "key property missing or null"
_ = pytest.param
CASES = [
    _(
        {"id": INT},
        [b'{"id":1}', b'{"id":"two"}'],
        {},
        2,
        "id",
        'Expected int, got str "two"',
        id="wrong-type",
    ),
    _({"id": INT}, [b'{"id":null}'], {}, 1, "id", f"{KEY} (Expected int, got null null)", id="null-key"),
    _(
        {"id": INT, "v": {"type": "string"}},
        [b'{"v":"x"}'],
        {},
        1,
        "id",
        f"{KEY} (Object missing required field id)",
        id="missing-key",
    ),
    _(
        {"id": INT, "u": UUID},
        [BAD_UUID],
        {},
        1,
        "u",
        f'{REGEX}, got "{BAD_UUID[13:-2].decode()}"',
        id="uuid",
    ),
    _({"id": INT, "u": {**UUID, "secret": True}}, [BAD_UUID], {}, 1, "u", REGEX, id="uuid-secret"),
    _(
        {"id": INT, "n": NUMBER},
        [b'{"id":1,"n":"x"}'],
        {},
        1,
        "n",
        'Expected a number, got "x"',
        id="text-number",
    ),
    _(
        {"id": INT, "n": {"type": "number"}},
        [b'{"id":1,"n":2}', b'{"id":2,"n":null}'],
        {},
        2,
        "n",
        "Expected a number, got null",
        id="null-number",
    ),
    _(
        {"id": INT, "n": NUMBER},
        [b'{"id":1,"n":1e999999}'],
        {},
        1,
        "n",
        "numeric value out of range (PostgreSQL's numeric limits), got 1e999999",
        id="numeric-range",
    ),
    _(
        {"id": INT, "q": INTEGER},
        [b'{"id":1,"q":NaN}'],
        {},
        1,
        "q",
        "NaN does not fit a bigint column (a integer property)",
        id="nan-integer",
    ),
    _(
        {"id": INT, "s": {**INT, "maximum": 10}},
        [b'{"id":1,"s":11}'],
        {},
        1,
        "s",
        "Expected int <= 10, got 11",
        id="bound",
    ),
    _(
        {"id": INT, "s": {**INT, "maximum": 327670}},
        [b'{"id":1,"s":400000}'],
        {},
        1,
        "s",
        "Expected int <= 327670, got 400000",
        id="bound-near-a-limit",
    ),
    _(
        {"id": INT, "u": {**INTEGER, "minimum": 0, "maximum": 2**64 - 1}},
        [b'{"id":1,"u":-1}'],
        {},
        1,
        "u",
        "Expected int >= 0, got -1",
        id="wide-bound",
    ),
    _(
        {"id": INT, "q": INTEGER},
        [b'{"id":1,"q":1099511627776}'],
        {"q": "integer"},
        0,
        None,
        "",
        id="widened",
    ),
    _(
        {"id": INT, "r": NUMBER},
        [b'{"id":1,"r":1e39}'],
        {"r": "real"},
        1,
        "r",
        "number out of range for real, got 1E+39",
        id="real-range",
    ),
    _(
        {"id": INT, "a": ARRAY},
        [b'{"id":1,"a":["x"]}'],
        {"a": "bigint[]"},
        1,
        "a",
        'expected an integer, got str ["x"]',
        id="array-element",
    ),
    _(
        {"id": INT, "a": ARRAY},
        [b'{"id":1,"a":["nope"]}'],
        {"a": "date[]"},
        1,
        "a",
        "Expected date elements, got 'nope', got [\"nope\"]",
        id="array-date",
    ),
    _(
        {"id": INT, "a": ARRAY},
        [b'{"id":1,"a":{"k":1}}'],
        {"a": "text[]"},
        1,
        "a",
        'Expected an array, got dict {"k":1}',
        id="not-an-array",
    ),
    _(
        {"id": INT, "d": {"type": ["null", "object"]}},
        [b'{"id":1,"d":' + b"[" * 10000 + b"]" * 10000 + b"}"],
        {},
        1,
        None,
        "record nested too deeply to decode",
        id="too-deep",
    ),
]


@pytest.mark.usefixtures("encoder")
@pytest.mark.parametrize(("props", "records", "types", "line", "field", "message"), CASES)
def test_batch_error_lines(
    props: dict[str, Any],
    records: list[bytes],
    types: dict[str, str],
    line: int,
    field: str | None,
    message: str,
) -> None:
    columns = [
        Column(n, types.get(n, column_type(s).pg_type), n, column_type(s).json_kind) for n, s in props.items()
    ]
    columns += [Column(n, t, None, "integer") for n, t in COMPUTED_METADATA]
    keys = ["id"] if KEY in message else []

    def codec(cols: list[Column]) -> RecordCodec:
        return RecordCodec("s", cols, props, keys, [], validate=True)

    def widen(column: Column) -> RecordCodec:
        return codec([Column(c.name, "numeric", c.prop, c.json_kind) if c == column else c for c in columns])

    builder = BatchBuilder("s", keys, False, widen)
    builder.codec = codec(columns)
    lines = [b'{"type":"RECORD","stream":"s","record":' + r + b"}" for r in records]
    meta = BatchMeta(datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC), 1, 2)
    batch = builder.build(lines, list(range(1, len(lines) + 1)), meta, upsert=bool(keys))
    if not message:
        assert batch.error is None and batch.count == len(lines)
        return
    where = f"line {line}, field {field!r}" if field else f"line {line}"
    assert str(batch.error) == f"stream 's', {where}: {message}"
