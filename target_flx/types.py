"""JSON Schema → PostgreSQL column types, and the widening rules used when a schema changes.

Values are decoded by msgspec straight into the Python type asyncpg's binary COPY needs, so the type
chosen here is also the validator: an integer column rejects "12" and 1.5, a date-time column rejects
"yesterday". `widen` never narrows or drops: the column only ever moves up its family, or to text.
"""

from __future__ import annotations

import datetime
import decimal
from dataclasses import dataclass
from typing import Annotated, Any

from msgspec import Meta, Raw

UUID_PATTERN = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UUID_TEXT = Annotated[str, Meta(pattern=UUID_PATTERN)]

# Families ordered from narrow to wide; a type widens to a wider member of its family, else to text.
_FAMILIES: tuple[tuple[str, ...], ...] = (
    ("smallint", "integer", "bigint", "numeric"),
    ("real", "double precision", "numeric"),
    ("date", "timestamp with time zone"),
    ("timestamp without time zone", "timestamp with time zone"),
)
_ALIASES = {
    "int": "integer",
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "decimal": "numeric",
    "float": "double precision",
    "float8": "double precision",
    "float4": "real",
    "bool": "boolean",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "time": "time without time zone",
    "varchar": "text",
    "character varying": "text",
    "json": "jsonb",
}
# The Python type each PostgreSQL type is decoded into (what asyncpg's binary codec takes).
_PYTHON: dict[str, Any] = {
    "smallint": Annotated[int, Meta(ge=-(2**15), le=2**15 - 1)],
    "integer": Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)],
    "bigint": Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)],
    "numeric": decimal.Decimal,
    "real": float,
    "double precision": float,
    "boolean": bool,
    "text": str,
    "date": datetime.date,
    "timestamp with time zone": datetime.datetime,
    "timestamp without time zone": datetime.datetime,
    "time without time zone": datetime.time,
    "uuid": UUID_TEXT,
    "jsonb": Raw,
}


class UnsupportedSchema(ValueError):
    """A property whose schema we cannot map (named by the caller)."""


def normalize(pg_type: str) -> str:
    """PostgreSQL's canonical spelling (as `format_type` prints it) for the names we handle."""
    lowered = " ".join(pg_type.lower().split())
    if lowered.startswith(("numeric(", "decimal(")):
        return "numeric"
    if lowered.startswith(("character varying", "varchar", "char")):
        return "text"
    return _ALIASES.get(lowered, lowered)


@dataclass(frozen=True)
class ColumnType:
    """The column a property maps to, and the msgspec type its values are decoded as."""

    pg_type: str
    json_kind: str  # integer | number | string | boolean | date-time | date | time | uuid | json | multi

    @property
    def decode_type(self) -> Any:
        """What msgspec decodes the JSON value into: the JSON Schema's own type, validated."""
        return _JSON_KIND_TYPES[self.json_kind]


_JSON_KIND_TYPES: dict[str, Any] = {
    "integer": int,
    "number": decimal.Decimal,
    "string": str,
    "boolean": bool,
    "date-time": datetime.datetime,
    "date": datetime.date,
    "time": datetime.time,
    # validated here, parsed by asyncpg in C (faster than building uuid.UUID objects)
    "uuid": UUID_TEXT,
    "json": Raw,
    "multi": str | int | float | bool,
}


def column_type(schema: dict[str, Any]) -> ColumnType:
    """Map one property schema (types, format, anyOf, x-sql-datatype) to a column."""
    kinds = _json_kinds(schema)
    if (declared := schema.get("x-sql-datatype")) is not None:
        pg_type = normalize(str(declared))
        if pg_type not in _PYTHON:
            raise UnsupportedSchema(f"x-sql-datatype {declared!r} is not supported")
        kind = next(iter(kinds)) if len(kinds) == 1 else "multi"
        return ColumnType(pg_type, kind)
    if not kinds or kinds & {"object", "array"}:
        return ColumnType("jsonb", "json")
    if len(kinds) > 1:
        if kinds <= {"integer", "number"}:
            return ColumnType("numeric", "number")
        return ColumnType("text", "multi")
    kind = next(iter(kinds))
    if kind == "integer":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        fits = all(
            isinstance(b, int | float) and INT64_MIN <= b <= INT64_MAX for b in (lo, hi) if b is not None
        )
        return ColumnType("bigint" if fits else "numeric", "integer")
    if kind == "number":
        return ColumnType("numeric", "number")
    if kind == "boolean":
        return ColumnType("boolean", "boolean")
    fmt = schema.get("format")
    if fmt == "date-time":
        return ColumnType("timestamp with time zone", "date-time")
    if fmt == "date":
        return ColumnType("date", "date")
    if fmt == "time":
        return ColumnType("time without time zone", "time")
    if fmt == "uuid":
        return ColumnType("uuid", "uuid")
    return ColumnType("text", "string")


def _json_kinds(schema: dict[str, Any]) -> set[str]:
    """The non-null JSON types a property allows, looking through anyOf/oneOf."""
    if "anyOf" in schema or "oneOf" in schema:
        kinds: set[str] = set()
        for option in schema.get("anyOf") or schema.get("oneOf") or []:
            kinds |= _json_kinds(option)
        return kinds
    declared = schema.get("type")
    if declared is None:
        if "properties" in schema:
            return {"object"}
        if "items" in schema:
            return {"array"}
        return set()
    types = {declared} if isinstance(declared, str) else set(declared)
    return types - {"null"}


def allows_null(schema: dict[str, Any]) -> bool:
    if "anyOf" in schema or "oneOf" in schema:
        return any(allows_null(o) for o in schema.get("anyOf") or schema.get("oneOf") or [])
    declared = schema.get("type")
    if declared is None:
        return True
    return declared == "null" or (not isinstance(declared, str) and "null" in declared)


def widen(existing: str, wanted: str) -> str:
    """The narrowest type holding both: `existing` itself when it already holds `wanted`."""
    existing, wanted = normalize(existing), normalize(wanted)
    if existing == wanted or existing == "text":
        return existing
    for family in _FAMILIES:
        if existing in family and wanted in family:
            return family[max(family.index(existing), family.index(wanted))]
    return "text"


def python_type(pg_type: str) -> Any:
    return _PYTHON[normalize(pg_type)]


def constrained(decode_type: Any, schema: dict[str, Any]) -> Any:
    """Add the JSON Schema's own bounds (minimum, maxLength, pattern…) so msgspec enforces them too."""
    meta: dict[str, Any] = {}
    for key, arg in (
        ("minimum", "ge"),
        ("maximum", "le"),
        ("exclusiveMinimum", "gt"),
        ("exclusiveMaximum", "lt"),
    ):
        value = schema.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and decode_type is int:
            meta[arg] = value
    if decode_type is str:
        for key, arg in (("minLength", "min_length"), ("maxLength", "max_length"), ("pattern", "pattern")):
            if key in schema:
                meta[arg] = schema[key]
    return Annotated[decode_type, Meta(**meta)] if meta else decode_type


JSON_NULL = b"null"


def is_json_null(raw: Raw) -> bool:
    return len(raw) == 4 and bytes(raw) == JSON_NULL
