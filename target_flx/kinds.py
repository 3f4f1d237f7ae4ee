"""The column kinds: for each, once, its number, the PostgreSQL type it fills, the Python type msgspec decodes
its values into, its reference encoder and, for an ARRAY's elements, the element's OID.

The numbers are the C encoder's (`enum Kind` in _copybin.c, exported as `_copybin.KINDS`; a test checks
they agree name by name). A new column type is a row here and a case in the C switch (or none: the C
encoder hands kinds it does not know to the reference encoder).
"""

from __future__ import annotations

import datetime
import decimal
import enum
from dataclasses import dataclass
from typing import Annotated, Any

from msgspec import Meta, Raw

from target_flx import pgbinary
from target_flx.pgbinary import INT16_RANGE, INT32_RANGE, INT64_RANGE, UUID_PATTERN, Encoder, ItemEncoder

UUID_TEXT = Annotated[str, Meta(pattern=UUID_PATTERN)]


class Kind(enum.IntEnum):
    """How a column's values are encoded (the C encoder's `enum Kind`)."""

    INT2 = 1
    INT4 = 2
    INT8 = 3
    NUMERIC = 4
    FLOAT4 = 5
    FLOAT8 = 6
    BOOL = 7
    TEXT = 8
    DATE = 9
    TIMESTAMPTZ = 10
    TIMESTAMP = 11
    TIME = 12
    UUID = 13
    JSONB = 14
    NUMERIC_NOT_NULL = 15  # numeric whose schema does not allow null: JSON null is invalid, not SQL NULL
    JSON = 16
    BYTEA = 17
    BYTEA_BASE16 = 18  # bytea from a string with that `contentEncoding`
    BYTEA_BASE64 = 19
    VARCHAR = 20  # text, but named `character varying` inside an array
    ARRAY = 64  # + the element's kind: a one-dimensional ARRAY filled from a JSON array


@dataclass(frozen=True)
class KindSpec:
    kind: Kind
    sql: str | None  # the column type, as `types.normalize` spells it (None: a variant of another kind)
    python: Any  # what msgspec decodes a value for the column into (None: not a column type of its own)
    encode: Encoder
    element_oid: int | None = None  # the OID of this type as an ARRAY's element (None: no arrays of it)
    item: ItemEncoder | None = None  # a JSON array's element → its bytes (with `element_oid`)


def _spec(
    kind: Kind,
    sql: str | None,
    python: Any,
    encode: Encoder,
    oid: int | None = None,
    *,
    item: ItemEncoder | None = None,
    parsed: type | None = None,
) -> KindSpec:
    """A row; an element type's `item` is the scalar one unless given (`parsed`: what a JSON string
    element is read as)."""
    if oid is not None and item is None:
        item = pgbinary.scalar_item(encode, parsed)
    return KindSpec(kind, sql, python, encode, oid, item)


def _integer(kind: Kind, sql: str, size: int, bounds: tuple[int, int], oid: int) -> KindSpec:
    python = Annotated[int, Meta(ge=bounds[0], le=bounds[1])]
    return _spec(kind, sql, python, pgbinary.integer(size, bounds), oid, parsed=int)


_DATETIME = datetime.datetime
TABLE: tuple[KindSpec, ...] = (
    _integer(Kind.INT2, "smallint", 2, INT16_RANGE, 21),
    _integer(Kind.INT4, "integer", 4, INT32_RANGE, 23),
    _integer(Kind.INT8, "bigint", 8, INT64_RANGE, 20),
    _spec(Kind.NUMERIC, "numeric", decimal.Decimal, pgbinary.numeric, 1700),
    _spec(Kind.FLOAT4, "real", float, pgbinary.float4, 700),
    _spec(Kind.FLOAT8, "double precision", float, pgbinary.float8, 701),
    _spec(Kind.BOOL, "boolean", bool, pgbinary.boolean, 16),
    _spec(Kind.TEXT, "text", str, pgbinary.text, 25, item=pgbinary.text_item),
    _spec(Kind.DATE, "date", datetime.date, pgbinary.date, 1082, parsed=datetime.date),
    _spec(
        Kind.TIMESTAMPTZ, "timestamp with time zone", _DATETIME, pgbinary.timestamp, 1184, parsed=_DATETIME
    ),
    _spec(
        Kind.TIMESTAMP, "timestamp without time zone", _DATETIME, pgbinary.timestamp, 1114, parsed=_DATETIME
    ),
    _spec(Kind.TIME, "time without time zone", datetime.time, pgbinary.time, 1083, parsed=datetime.time),
    # validated by msgspec, parsed by the encoder (faster than building uuid.UUID objects)
    _spec(Kind.UUID, "uuid", UUID_TEXT, pgbinary.uuid_, 2950),
    _spec(Kind.JSONB, "jsonb", Raw, pgbinary.jsonb, 3802, item=pgbinary.jsonb_item),
    _spec(Kind.NUMERIC_NOT_NULL, None, None, pgbinary.numeric_not_null),
    _spec(Kind.JSON, "json", Raw, pgbinary.json),
    _spec(Kind.BYTEA, "bytea", str, pgbinary.bytea),
    _spec(Kind.BYTEA_BASE16, None, None, pgbinary.base16),
    _spec(Kind.BYTEA_BASE64, None, None, pgbinary.base64_),
    _spec(Kind.VARCHAR, "character varying", None, pgbinary.text, 1043, item=pgbinary.text_item),
)
SPECS: dict[int, KindSpec] = {spec.kind: spec for spec in TABLE}
# Column types by name (what `x-sql-datatype` may name), and the element types an ARRAY column can have.
COLUMNS: dict[str, KindSpec] = {s.sql: s for s in TABLE if s.sql is not None and s.python is not None}
ELEMENTS: dict[str, KindSpec] = {s.sql: s for s in TABLE if s.sql is not None and s.element_oid is not None}
ENCODERS: dict[int, Encoder] = {spec.kind: spec.encode for spec in TABLE}


def encode_value(kind: int, value: Any) -> bytes | None:
    """One value's binary form for a column of `kind`; None for SQL NULL. Raises `reasons.Invalid`."""
    if value is None:
        return None
    encode = ENCODERS.get(kind)
    if encode is not None:
        return encode(value)
    element = SPECS.get(kind - Kind.ARRAY) if kind > Kind.ARRAY else None
    if element is None or element.element_oid is None or element.item is None:
        raise ValueError(f"unknown column kind {kind}")
    return pgbinary.array(value, element.element_oid, element.item)
