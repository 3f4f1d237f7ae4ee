"""Decoded records → one PostgreSQL binary COPY stream per batch.

The C extension `_copybin` does the work: one call per batch reads each record's fields out of the
msgspec structs and appends every value in its column's binary form, so no per-record tuple and no
per-value Python call is made (asyncpg's `copy_records_to_table` costs ~5 µs a record here, most of the
load's Python time). Numbers go to numeric columns in binary too, from their exact JSON text, so an append
COPYs straight into the table with no staging table for PostgreSQL to parse them from.

This module is the reference: `encode_value` gives the same bytes in Python, and the extension calls it
for what it does not handle itself. Without the extension (a machine without a C compiler) a batch goes
through a loop generated for its column layout with a fast field encoder per kind, about 3x slower than C,
and a batch holding an invalid value through the plain reference loop, which names it. Tests compare all
three with each other and with PostgreSQL's own `*_send` output.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import functools
import os
import re
import struct
import uuid
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import msgspec
from msgspec import Raw

from target_flx.types import UUID_PATTERN, normalize

try:
    from target_flx import _copybin
except ImportError:  # pragma: no cover - exercised by forcing the Python path in tests
    _copybin = None  # type: ignore[assignment]

KINDS = {
    "smallint": 1,
    "integer": 2,
    "bigint": 3,
    "numeric": 4,
    "real": 5,
    "double precision": 6,
    "boolean": 7,
    "text": 8,
    "date": 9,
    "timestamp with time zone": 10,
    "timestamp without time zone": 11,
    "time without time zone": 12,
    "uuid": 13,
    "jsonb": 14,
    "json": 16,
    "bytea": 17,
}
NUMERIC_NOT_NULL = 15  # numeric whose schema does not allow null: JSON null is invalid, not SQL NULL
BYTEA_BASE16, BYTEA_BASE64 = 18, 19  # bytea from a string with that `contentEncoding`
VARCHAR_ELEMENT = 20  # text, but named `character varying` inside an array
ARRAY = 64  # + the element's kind: a one-dimensional ARRAY filled from a JSON array
_ELEMENT_OIDS = {
    1: 21,
    2: 23,
    3: 20,
    4: 1700,
    5: 700,
    6: 701,
    7: 16,
    8: 25,
    9: 1082,
    10: 1184,
    11: 1114,
    12: 1083,
    13: 2950,
    14: 3802,
    VARCHAR_ELEMENT: 1043,
}
FIELD, EXTRACTED, CONST, VERSION = 0, 1, 2, 3
HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
TRAILER = b"\xff\xff"


class PlanColumn(NamedTuple):
    """Where a column's value comes from and how it is encoded (the extension reads these as tuples)."""

    source: int  # FIELD: record attribute `arg`; EXTRACTED: `arg[message.time_extracted]`; CONST: `arg`
    arg: Any
    kind: int
    converter: Callable[[Any], Any] | None


class InvalidValue(ValueError):
    """A value its column cannot take; the caller names the stream, line and field."""


def kind_of(pg_type: str) -> int:
    pg_type = normalize(pg_type)
    if pg_type.endswith("[]"):
        element = pg_type.removesuffix("[]")
        return ARRAY + (VARCHAR_ELEMENT if element == "character varying" else KINDS[element])
    return KINDS[pg_type]


def column_kind(pg_type: str, json_kind: str) -> int:
    """The encoder kind for a property of `json_kind` in a `pg_type` column."""
    kind = kind_of(pg_type)
    if kind == KINDS["bytea"] and json_kind == "base16":
        return BYTEA_BASE16
    if kind == KINDS["bytea"] and json_kind == "base64":
        return BYTEA_BASE64
    return kind


Failure = tuple[int, int, str]  # (row index, column index, message)


def encode(messages: list[Any], plan: Sequence[PlanColumn]) -> bytes | Failure:
    """The COPY stream for `messages`, or where the first invalid value is."""
    plan = tuple(plan)
    fallback = _Fallback(plan)
    if _copybin is not None and not _FORCE_PYTHON:
        result: bytes | Failure = _copybin.encode(messages, plan, fallback)
        return result
    try:
        return _encode_fast_python(messages, plan)
    except (ValueError, TypeError, AttributeError, OverflowError, struct.error):
        return _encode_python(messages, plan, fallback)  # it names the first invalid value


# TARGET_FLX_ENCODER=python: batches encoded in Python, as on a machine without the extension (tests run
# the load path both ways; also a way out should the extension ever misbehave).
_FORCE_PYTHON = os.environ.get("TARGET_FLX_ENCODER") == "python"


def use_python(force: bool) -> None:
    global _FORCE_PYTHON
    _FORCE_PYTHON = force


def extension_built() -> bool:
    return _copybin is not None


class _Fallback:
    def __init__(self, plan: tuple[PlanColumn, ...]) -> None:
        self.kinds = [c.kind for c in plan]

    def __call__(self, column: int, value: Any) -> bytes | None:
        return encode_value(self.kinds[column], value)


def _encode_python(messages: list[Any], plan: tuple[PlanColumn, ...], fallback: _Fallback) -> bytes | Failure:
    parts = [HEADER]
    count = struct.pack("!h", len(plan))
    for r, message in enumerate(messages):
        record = message.record
        parts.append(count)
        for c, col in enumerate(plan):
            if col.source == FIELD:
                value, preencoded = getattr(record, col.arg), False
            elif col.source == EXTRACTED:
                value, preencoded = col.arg[message.time_extracted], True
            elif col.source == CONST:
                value, preencoded = col.arg, True
            else:
                value, preencoded = message.version, False
            if col.converter is not None and value is not None:
                value = col.converter(value)
            if value is None:
                parts.append(_NULL)
                continue
            if preencoded and type(value) is bytes:
                encoded: bytes | None = value
            else:
                try:
                    encoded = fallback(c, value)
                except ValueError as exc:
                    return (r, c, str(exc))
            parts.append(_NULL if encoded is None else _INT32.pack(len(encoded)) + encoded)
    parts.append(TRAILER)
    return b"".join(parts)


_NULL = b"\xff\xff\xff\xff"
_INT16 = struct.Struct("!h")
_INT32 = struct.Struct("!i")
_INT64 = struct.Struct("!q")
_FLOAT4 = struct.Struct("!f")
_FLOAT8 = struct.Struct("!d")
_PG_EPOCH_ORDINAL = datetime.date(2000, 1, 1).toordinal()
_INT_RANGES = {1: (-(2**15), 2**15 - 1), 2: (-(2**31), 2**31 - 1), 3: (-(2**63), 2**63 - 1)}


def encode_value(kind: int, value: Any) -> bytes | None:
    """One value's binary form for a column of `kind`; None for SQL NULL. Raises InvalidValue."""
    if value is None:
        return None
    if kind in _INT_RANGES:
        lo, hi = _INT_RANGES[kind]
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidValue(f"expected an integer, got {type(value).__name__}")
        if not lo <= value <= hi:
            raise InvalidValue("integer out of range for its column")
        return value.to_bytes({1: 2, 2: 4, 3: 8}[kind], "big", signed=True)
    if kind == 4:
        return _numeric(value)
    if kind == NUMERIC_NOT_NULL:
        if isinstance(value, Raw | bytes) and bytes(value) == b"null":
            raise InvalidValue("Expected a number, got null")
        return _numeric(value)
    if kind in (5, 6):
        if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
            raise InvalidValue(f"Expected a number, got {type(value).__name__}")
        number = float(value)
        if kind == 6:
            return _FLOAT8.pack(number)
        try:
            return _FLOAT4.pack(number)
        except OverflowError:
            raise InvalidValue("number out of range for real") from None
    if kind == 7:
        return b"\x01" if value else b"\x00"
    if kind == 8:
        try:
            return str(value).encode()
        except UnicodeEncodeError:
            raise InvalidValue("text is not valid Unicode (a lone surrogate)") from None
    if kind == 9:
        return _INT32.pack(value.toordinal() - _PG_EPOCH_ORDINAL)
    if kind in (10, 11):
        return _INT64.pack(_epoch_us(value))
    if kind == 12:  # a time with an offset is its UTC time, as a date-time is its UTC instant
        micro = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond
        offset = value.utcoffset()
        if offset:
            micro = (micro - offset // datetime.timedelta(microseconds=1)) % 86_400_000_000
        return _INT64.pack(micro)
    if kind == 13:
        try:
            return uuid.UUID(_uuid_text(value)).bytes
        except ValueError:
            raise InvalidValue("not a UUID") from None
    if kind == 14:
        return _jsonb(value)
    if kind == 16:
        encoded = _jsonb(value)
        return None if encoded is None else encoded[1:]
    if kind == 17:
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        return str(value).encode()
    if kind == BYTEA_BASE16:
        return _from_base16(value)
    if kind == BYTEA_BASE64:
        try:
            return base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidValue("Expected base64 text") from None
    if kind > ARRAY and kind - ARRAY in _ELEMENT_OIDS:
        return _array(kind - ARRAY, value)
    raise ValueError(f"unknown column kind {kind}")


def _from_base16(value: Any) -> bytes:
    """Hex text to bytes, as MeltanoLabs target-postgres reads `contentEncoding: base16` (a `\\x` or `0x`
    prefix and an odd number of digits allowed)."""
    if not isinstance(value, str):
        raise InvalidValue(f"Expected base16 text, got {type(value).__name__}")
    text = value[2:] if value.startswith(("\\x", "0x")) else value
    if len(text) % 2:
        text = "0" + text
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InvalidValue("Expected base16 (hex) text") from None


_ARRAY_ITEMS = msgspec.json.Decoder(float_hook=decimal.Decimal)
_ITEM_TEXT = msgspec.json.Encoder(decimal_format="number")


def _array(element: int, value: Any) -> bytes | None:
    """A JSON array in PostgreSQL's binary array form (one dimension, lower bound 1)."""
    if isinstance(value, Raw | bytes | bytearray | memoryview):
        data = bytes(value)
        if data == b"null":
            return None
        items = _ARRAY_ITEMS.decode(data)
    elif isinstance(value, str):
        items = _ARRAY_ITEMS.decode(value)
    else:
        items = value
    if not isinstance(items, list):
        raise InvalidValue(f"Expected an array, got {type(items).__name__}")
    parts = [b""]
    has_null = 0
    for item in items:
        if item is None:
            has_null = 1
            parts.append(_NULL)
            continue
        encoded = _array_item(element, item)
        parts.append(_INT32.pack(len(encoded)) + encoded)
    oid = _ELEMENT_OIDS[element]
    dims = struct.pack("!iiiii", 1, has_null, oid, len(items), 1) if items else struct.pack("!iii", 0, 0, oid)
    parts[0] = dims
    return b"".join(parts)


def _array_item(element: int, item: Any) -> bytes:
    if element in (8, VARCHAR_ELEMENT):
        return item.encode() if isinstance(item, str) else _ITEM_TEXT.encode(item)
    if element == 14:
        return b"\x01" + _ITEM_TEXT.encode(item)
    if isinstance(item, list | dict):
        raise InvalidValue(f"Expected an array of scalars, got an element of type {type(item).__name__}")
    if element in _INT_RANGES and isinstance(item, decimal.Decimal) and item == item.to_integral_value():
        item = int(item)
    elif element in (9, 10, 11, 12) and isinstance(item, str):
        typ = {9: datetime.date, 10: datetime.datetime, 11: datetime.datetime, 12: datetime.time}[element]
        try:
            item = msgspec.convert(item, typ)
        except msgspec.ValidationError:
            raise InvalidValue(f"Expected {typ.__name__} elements, got {item!r:.80}") from None
    encoded = encode_value(element, item)
    assert encoded is not None
    return encoded


def _epoch_us(value: datetime.datetime) -> int:
    """Microseconds since 2000-01-01 UTC; a naive value is UTC. From the fields, as the extension does,
    so 0001-01-01 with a positive offset (before year 1 in UTC) is not an OverflowError. Each fixed
    zone's offset is looked up once (msgspec shares zone objects; a ZoneInfo's offset varies)."""
    zone = value.tzinfo
    offset = _ZONE_OFFSETS.get(zone)
    if offset is None:
        delta = value.utcoffset() if zone is not None else None
        offset = 0 if delta is None else delta // datetime.timedelta(microseconds=1)
        if zone is None or type(zone) is datetime.timezone:
            _ZONE_OFFSETS[zone] = offset
    seconds = (value.toordinal() - _PG_EPOCH_ORDINAL) * 86_400 + value.hour * 3600 + value.minute * 60
    return (seconds + value.second) * 1_000_000 + value.microsecond - offset


_ZONE_OFFSETS: dict[Any, int] = {}


def _uuid_text(value: Any) -> str:
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise ValueError(value)
    return value


_UUID = re.compile(UUID_PATTERN.removeprefix("^").removesuffix("$"))


def _jsonb(value: Any) -> bytes | None:
    if isinstance(value, str):
        return b"\x01" + value.encode()
    data = bytes(value)
    return None if data == b"null" else b"\x01" + data


def _numeric(value: Any) -> bytes | None:
    """numeric's binary form (base-10000 digits), exactly what PostgreSQL stores for the decimal text.
    A JSON number's text is split as it is when it has no exponent (the usual case); any other number is
    first written out in plain decimal by Decimal. NaN and ±Infinity (bare tokens in the input, which the
    codec passes as `Raw(b"NaN")` and so on) are numeric's special values."""
    if isinstance(value, Raw | bytes | bytearray | memoryview):
        text = bytes(value)
        if text == b"null":
            return None
        if (plain := _PLAIN_NUMBER.fullmatch(text)) is not None:
            return _numeric_from_plain(*plain.groups())
        if (special := _NUMERIC_SPECIALS.get(text)) is not None:
            return special
        if not text[:1].isdigit() and not (text[:1] == b"-" and text[1:2].isdigit()):
            raise InvalidValue("Expected a number")
        number = decimal.Decimal(text.decode())
    elif isinstance(value, bool):
        raise InvalidValue("Expected a number, got a boolean")
    elif isinstance(value, int | decimal.Decimal):
        number = decimal.Decimal(value)
    elif isinstance(value, float):
        number = decimal.Decimal(repr(value))
    else:
        raise InvalidValue(f"Expected a number, got {type(value).__name__}")
    if not number.is_finite():
        if number.is_snan():
            raise InvalidValue("Expected a number, got sNaN")
        return _NUMERIC_SPECIALS[b"NaN" if number.is_nan() else b"-Infinity" if number < 0 else b"Infinity"]
    # PostgreSQL's range, checked before writing the digits out: 1e999999 would be a megabyte of zeros
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if -exponent > 0x3FFF or (number and (len(digits) + exponent - 1) // 4 > 0x7FFF):
        return _overflow()
    plain = _PLAIN_NUMBER.fullmatch(format(number, "f").encode())
    assert plain is not None
    return _numeric_from_plain(*plain.groups())


def _numeric_from_plain(sign: bytes, whole: bytes, fraction: bytes | None) -> bytes:
    """From `-?whole.fraction`: base-10000 groups aligned on the point, leading and trailing zero groups
    dropped (as PostgreSQL strips them), the fraction's length as the display scale."""
    fraction = fraction or b""
    dscale = len(fraction)
    if dscale > 0x3FFF:
        return _overflow()
    whole = whole.lstrip(b"0")
    whole = b"0" * (-len(whole) % 4) + whole
    digits = whole + fraction + b"0" * (-len(fraction) % 4)
    groups = [int(digits[i : i + 4]) for i in range(0, len(digits), 4)]
    weight = len(whole) // 4 - 1
    while groups and groups[0] == 0:
        del groups[0]
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        return _NUMERIC_HEAD.pack(0, 0, 0, dscale)
    if weight > 0x7FFF:
        return _overflow()
    head = _NUMERIC_HEAD.pack(len(groups), weight, 0x4000 if sign else 0, dscale)
    return head + struct.pack(f"!{len(groups)}h", *groups)


_PLAIN_NUMBER = re.compile(rb"(-?)([0-9]+)(?:\.([0-9]+))?")
_NUMERIC_HEAD = struct.Struct("!hhHh")
# numeric's special values (PostgreSQL 14+ for the infinities): no digits, the sign field says which; the
# display scale field is what numeric_send gives for them
_NUMERIC_SPECIALS = {
    b"NaN": _NUMERIC_HEAD.pack(0, 0, 0xC000, 0),
    b"Infinity": _NUMERIC_HEAD.pack(0, 0, 0xD000, 0x20),
    b"-Infinity": _NUMERIC_HEAD.pack(0, 0, 0xF000, 0x20),
}


def _overflow() -> bytes:
    raise InvalidValue("numeric value out of range (PostgreSQL's numeric limits)")


def _encode_fast_python(messages: list[Any], plan: tuple[PlanColumn, ...]) -> bytes:
    """The batch without the extension: a loop generated for this column layout, each column's value
    sent straight to its kind's field encoder. Raises on an invalid value (the caller then runs the
    reference loop, which says which one)."""
    build = _row_loop(
        tuple(
            (col.source, col.arg if col.source == FIELD else None, col.converter is not None) for col in plan
        )
    )
    parts = [HEADER]
    build(
        messages,
        [_FIELD_ENCODERS.get(col.kind) or _generic_field(col.kind) for col in plan],
        [col.converter for col in plan],
        [col.arg for col in plan],
        parts,
    )
    parts.append(TRAILER)
    return b"".join(parts)


@functools.lru_cache(maxsize=64)
def _row_loop(layout: tuple[tuple[int, Any, bool], ...]) -> Callable[..., None]:
    lines = [
        "def build(messages, enc, conv, arg, parts):",
        "    append = parts.append",
        *[f"    e{c} = enc[{c}]" for c in range(len(layout))],
        "    for m in messages:",
        "        r = m.record",
        "        append(COUNT)",
    ]
    for c, (source, attr, converted) in enumerate(layout):
        if source == FIELD:
            assert re.fullmatch(r"f[0-9]+", attr), attr  # the struct's own field names, never input text
            value = f"r.{attr}"
        elif source == EXTRACTED:
            value = f"arg[{c}][m.time_extracted]"
        elif source == CONST:
            value = f"arg[{c}]"
        else:
            value = "m.version"
        lines.append(f"        v = {value}")
        if converted:
            lines.append(f"        if v is not None: v = conv[{c}](v)")
        if source in (EXTRACTED, CONST):  # pre-encoded per batch when bytes
            lines.append(f"        append(NULL if v is None else PRE(v) if type(v) is bytes else e{c}(v))")
        else:
            lines.append(f"        append(NULL if v is None else e{c}(v))")
    namespace: dict[str, Any] = {
        "COUNT": _INT16.pack(len(layout)),
        "NULL": _NULL,
        "PRE": lambda v: _INT32.pack(len(v)) + v,
    }
    exec(compile("\n".join(lines) + "\n", "<target_flx.copybin>", "exec"), namespace)
    build: Callable[..., None] = namespace["build"]
    return build


def _generic_field(kind: int) -> Callable[[Any], bytes]:
    def field(value: Any) -> bytes:
        encoded = encode_value(kind, value)
        return _NULL if encoded is None else _INT32.pack(len(encoded)) + encoded

    return field


def _timestamp_field(value: Any) -> bytes:
    if type(value) is not datetime.datetime:
        raise TypeError("not a datetime")
    return _I8_FIELD.pack(8, _epoch_us(value))


def _uuid_field(value: Any) -> bytes:
    if type(value) is not str or not _CANONICAL_UUID.fullmatch(value):
        return _GENERIC_UUID(value)
    return _UUID_LENGTH + bytes.fromhex(value.replace("-", ""))


def _jsonb_field(value: Any) -> bytes:
    data = bytes(value) if type(value) is not str else value.encode()
    if type(value) is not str and data == b"null":
        return _NULL
    return _INT32.pack(len(data) + 1) + b"\x01" + data


def _text_field(value: Any) -> bytes:
    data = value.encode() if type(value) is str else str(value).encode()
    return _INT32.pack(len(data)) + data


def _typed(kind: int, typ: type, fast: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    generic = _generic_field(kind)
    return lambda value: fast(value) if type(value) is typ else generic(value)


_I2_FIELD, _I4_FIELD, _I8_FIELD = struct.Struct("!ih"), struct.Struct("!ii"), struct.Struct("!iq")
_F8_FIELD = struct.Struct("!id")
_UUID_LENGTH = b"\x00\x00\x00\x10"
_GENERIC_UUID = _generic_field(13)
_TRUE, _FALSE = b"\x00\x00\x00\x01\x01", b"\x00\x00\x00\x01\x00"
_CANONICAL_UUID = re.compile("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_FIELD_ENCODERS: dict[int, Callable[[Any], bytes]] = {
    1: _typed(1, int, lambda v: _I2_FIELD.pack(2, v)),
    2: _typed(2, int, lambda v: _I4_FIELD.pack(4, v)),
    3: _typed(3, int, lambda v: _I8_FIELD.pack(8, v)),
    4: _generic_field(4),  # the reference itself: it splits a plain JSON number's text directly
    NUMERIC_NOT_NULL: _generic_field(NUMERIC_NOT_NULL),
    6: _typed(6, float, lambda v: _F8_FIELD.pack(8, v)),
    7: _typed(7, bool, lambda v: _TRUE if v else _FALSE),
    8: _typed(8, str, _text_field),
    9: _typed(9, datetime.date, lambda v: _I4_FIELD.pack(4, v.toordinal() - _PG_EPOCH_ORDINAL)),
    10: _timestamp_field,
    13: _uuid_field,
    14: _jsonb_field,
}
