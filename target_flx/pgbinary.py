"""One value → its PostgreSQL binary form: the reference encoders, one per column kind (see kinds.py).

Each takes a value that is not None and returns its bytes (None for SQL NULL, as JSON null in a jsonb
column is), or raises `Invalid`. The C extension gives the same bytes for what it handles and calls these
for the rest; tests compare both with the server's own `*_send` output.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import re
import struct
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
from msgspec import Raw

from target_flx.reasons import Invalid, Reason

Encoder = Callable[[Any], bytes | None]
ItemEncoder = Callable[[Any], bytes]

# The text forms a uuid column takes (the JSON Schema pattern the strict decoder checks, too).
UUID_PATTERN = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
INT16_RANGE = (-(2**15), 2**15 - 1)
INT32_RANGE = (-(2**31), 2**31 - 1)
INT64_RANGE = (-(2**63), 2**63 - 1)

NULL = b"\xff\xff\xff\xff"
INT32 = struct.Struct("!i")
INT64 = struct.Struct("!q")
_FLOAT4 = struct.Struct("!f")
_FLOAT8 = struct.Struct("!d")
PG_EPOCH_ORDINAL = datetime.date(2000, 1, 1).toordinal()


def integer(size: int, bounds: tuple[int, int]) -> Encoder:
    """smallint, integer, bigint: `size` bytes, refusing what lies outside `bounds`."""
    lo, hi = bounds

    def encode(value: Any) -> bytes:
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(Reason.NOT_AN_INTEGER, got=type(value).__name__)
        if not lo <= value <= hi:
            raise Invalid(Reason.OUT_OF_RANGE)
        return value.to_bytes(size, "big", signed=True)

    return encode


def numeric_not_null(value: Any) -> bytes | None:
    """numeric whose schema does not allow null: JSON null is invalid, not SQL NULL."""
    if isinstance(value, Raw | bytes) and bytes(value) == b"null":
        raise Invalid(Reason.NOT_A_NUMBER)
    return numeric(value)


def _float_value(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        raise Invalid(Reason.NOT_A_NUMBER)
    return float(value)


def float4(value: Any) -> bytes:
    try:
        return _FLOAT4.pack(_float_value(value))
    except OverflowError:
        raise Invalid(Reason.REAL_OUT_OF_RANGE) from None


def float8(value: Any) -> bytes:
    return _FLOAT8.pack(_float_value(value))


def boolean(value: Any) -> bytes:
    return b"\x01" if value else b"\x00"


def text(value: Any) -> bytes:
    try:
        return str(value).encode()
    except UnicodeEncodeError:
        raise Invalid(Reason.LONE_SURROGATE) from None


def date(value: Any) -> bytes:
    return INT32.pack(value.toordinal() - PG_EPOCH_ORDINAL)


def timestamp(value: Any) -> bytes:
    """timestamptz and timestamp alike: the instant (for `timestamp`, its UTC wall time)."""
    return INT64.pack(epoch_us(value))


def time(value: Any) -> bytes:
    """A time with an offset is its UTC time, as a date-time is its UTC instant."""
    micro = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond
    offset = value.utcoffset()
    if offset:
        micro = (micro - offset // datetime.timedelta(microseconds=1)) % 86_400_000_000
    return INT64.pack(micro)


_UUID = re.compile(UUID_PATTERN.removeprefix("^").removesuffix("$"))


def uuid_(value: Any) -> bytes:
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise Invalid(Reason.NOT_A_UUID)
    return uuid.UUID(value).bytes


def jsonb(value: Any) -> bytes | None:
    if isinstance(value, str):
        return b"\x01" + value.encode()
    data = bytes(value)
    return None if data == b"null" else b"\x01" + data


def json(value: Any) -> bytes | None:
    """json's binary form is its text: jsonb's without the version byte."""
    encoded = jsonb(value)
    return None if encoded is None else encoded[1:]


def bytea(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


def base16(value: Any) -> bytes:
    """Hex text to bytes, as MeltanoLabs target-postgres reads `contentEncoding: base16` (a `\\x` or `0x`
    prefix and an odd number of digits allowed)."""
    if not isinstance(value, str):
        raise Invalid(Reason.NOT_BASE16, got=type(value).__name__)
    hex_text = value[2:] if value.startswith(("\\x", "0x")) else value
    if len(hex_text) % 2:
        hex_text = "0" + hex_text
    try:
        return bytes.fromhex(hex_text)
    except ValueError:
        raise Invalid(Reason.NOT_BASE16) from None


def base64_(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(Reason.NOT_BASE64) from None


# ---------- date-times ----------


def epoch_us(value: datetime.datetime) -> int:
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
    seconds = (value.toordinal() - PG_EPOCH_ORDINAL) * 86_400 + value.hour * 3600 + value.minute * 60
    return (seconds + value.second) * 1_000_000 + value.microsecond - offset


_ZONE_OFFSETS: dict[Any, int] = {}


# ---------- numeric ----------


def numeric(value: Any) -> bytes | None:
    """numeric's binary form (base-10000 digits), exactly what PostgreSQL stores for the decimal text.
    A JSON number's text is split as it is when it has no exponent (the usual case); any other number is
    first written out in plain decimal by Decimal. NaN and ±Infinity (bare tokens in the input, which the
    codec passes as `Raw(b"NaN")` and so on) are numeric's special values."""
    if isinstance(value, Raw | bytes | bytearray | memoryview):
        data = bytes(value)
        if data == b"null":
            return None
        if (plain := _PLAIN_NUMBER.fullmatch(data)) is not None:
            return _numeric_from_plain(*plain.groups())
        if (special := _NUMERIC_SPECIALS.get(data)) is not None:
            return special
        if not data[:1].isdigit() and not (data[:1] == b"-" and data[1:2].isdigit()):
            raise Invalid(Reason.NOT_A_NUMBER)
        number = decimal.Decimal(data.decode())
    elif isinstance(value, bool):
        raise Invalid(Reason.NOT_A_NUMBER)
    elif isinstance(value, int | decimal.Decimal):
        number = decimal.Decimal(value)
    elif isinstance(value, float):
        number = decimal.Decimal(repr(value))
    else:
        raise Invalid(Reason.NOT_A_NUMBER)
    if not number.is_finite():
        if number.is_snan():
            raise Invalid(Reason.NOT_A_NUMBER)
        return _NUMERIC_SPECIALS[b"NaN" if number.is_nan() else b"-Infinity" if number < 0 else b"Infinity"]
    # PostgreSQL's range, checked before writing the digits out: 1e999999 would be a megabyte of zeros
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if -exponent > 0x3FFF or (number and (len(digits) + exponent - 1) // 4 > 0x7FFF):
        raise Invalid(Reason.NUMERIC_OUT_OF_RANGE)
    plain = _PLAIN_NUMBER.fullmatch(format(number, "f").encode())
    assert plain is not None
    return _numeric_from_plain(*plain.groups())


def _numeric_from_plain(sign: bytes, whole: bytes, fraction: bytes | None) -> bytes:
    """From `-?whole.fraction`: base-10000 groups aligned on the point, leading and trailing zero groups
    dropped (as PostgreSQL strips them), the fraction's length as the display scale."""
    fraction = fraction or b""
    dscale = len(fraction)
    if dscale > 0x3FFF:
        raise Invalid(Reason.NUMERIC_OUT_OF_RANGE)
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
        raise Invalid(Reason.NUMERIC_OUT_OF_RANGE)
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


# ---------- arrays ----------

_ARRAY_ITEMS = msgspec.json.Decoder(float_hook=decimal.Decimal)
_ITEM_TEXT = msgspec.json.Encoder(decimal_format="number")


def array(value: Any, oid: int, item: ItemEncoder) -> bytes | None:
    """A JSON array in PostgreSQL's binary array form (one dimension, lower bound 1) of elements of type
    `oid`, each non-null element encoded by `item`."""
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
        raise Invalid(Reason.NOT_AN_ARRAY, got=type(items).__name__)
    parts = [b""]
    has_null = 0
    for element in items:
        if element is None:
            has_null = 1
            parts.append(NULL)
            continue
        encoded = item(element)
        parts.append(INT32.pack(len(encoded)) + encoded)
    dims = struct.pack("!iiiii", 1, has_null, oid, len(items), 1) if items else struct.pack("!iii", 0, 0, oid)
    parts[0] = dims
    return b"".join(parts)


def text_item(element: Any) -> bytes:
    """A text array holds strings as themselves and anything else as its JSON text."""
    return element.encode() if isinstance(element, str) else _ITEM_TEXT.encode(element)


def jsonb_item(element: Any) -> bytes:
    return b"\x01" + _ITEM_TEXT.encode(element)


def scalar_item(encode: Encoder, parsed: type | None = None) -> ItemEncoder:
    """Elements of a scalar type: no arrays or objects; a whole Decimal is an int; a string is first
    parsed as `parsed` (dates and times, which JSON carries as text)."""

    def item(element: Any) -> bytes:
        if isinstance(element, list | dict):
            raise Invalid(Reason.NESTED_ELEMENT, got=f"an element of type {type(element).__name__}")
        if isinstance(element, decimal.Decimal) and parsed is int and element == element.to_integral_value():
            element = int(element)
        elif parsed is not None and parsed is not int and isinstance(element, str):
            try:
                element = msgspec.convert(element, parsed)
            except msgspec.ValidationError:
                raise Invalid(Reason.BAD_ELEMENT, detail=parsed.__name__, got=f"{element!r:.80}") from None
        encoded = encode(element)
        assert encoded is not None
        return encoded

    return item
