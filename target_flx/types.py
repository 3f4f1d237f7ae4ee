"""JSON Schema → PostgreSQL column types, and the rules for a column that already exists.

Values are decoded by msgspec straight into the Python type the binary COPY encoder needs, so the type
chosen here is also the validator: an integer column rejects "12" and 1.5, a date-time column rejects
"yesterday". `adopt` keeps an existing column's type wherever every value of the property fits it exactly
(a `timestamp` column takes the UTC instant, an ARRAY column takes arrays, an integer column takes
integers until one is too big); otherwise `widen` moves it up its family, or to text. Nothing narrows.
"""

from __future__ import annotations

import datetime
import decimal
import re
from dataclasses import dataclass
from typing import Annotated, Any

from msgspec import Meta, Raw

from target_flx.kinds import COLUMNS, ELEMENTS
from target_flx.kinds import UUID_TEXT as UUID_TEXT
from target_flx.pgbinary import INT16_RANGE, INT32_RANGE, INT64_RANGE
from target_flx.pgbinary import UUID_PATTERN as UUID_PATTERN

INT64_MIN, INT64_MAX = INT64_RANGE
# The spelling `column_type` gives a numeric column meant for integer values (bounds beyond int64): the same
# type as `numeric` to PostgreSQL, but an existing integer column adopts it (see `adopt`).
INTEGER_NUMERIC = "decimal"
CONTENT_ENCODINGS = ("base16", "base64")

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
}
# Element types an ARRAY column can have here (what MeltanoLabs target-postgres creates, and more).
ARRAY_ELEMENTS = tuple(ELEMENTS)
INTEGER_RANGES = {"smallint": INT16_RANGE, "integer": INT32_RANGE, "bigint": INT64_RANGE}


class UnsupportedSchema(ValueError):
    """A property whose schema we cannot map (named by the caller)."""


def normalize(pg_type: str) -> str:
    """PostgreSQL's canonical spelling (as `format_type` prints it) for the names we handle. Arrays keep
    their element type (`character varying[]` stays apart from `text[]`: binary COPY names the element)."""
    lowered = " ".join(pg_type.lower().split())
    if lowered.endswith("[]"):
        element = re.sub(r"\(.*\)", "", lowered.removesuffix("[]").rstrip("[]")).strip()
        if lowered.count("[]") > 1:
            return lowered
        if element in ("character varying", "varchar"):
            return "character varying[]"
        return normalize(element) + "[]"
    if lowered.startswith(("numeric(", "decimal(")):
        return "numeric"
    if lowered.startswith(("character varying", "varchar", "char")):
        return "text"
    if lowered.startswith(("timestamp(", "time(")):
        lowered = re.sub(r"\(\d+\)", "", lowered)
    return _ALIASES.get(lowered, lowered)


def array_element(pg_type: str) -> str | None:
    """The element type of a one-dimensional ARRAY type this module can fill, else None."""
    pg_type = normalize(pg_type)
    if not pg_type.endswith("[]"):
        return None
    element = pg_type.removesuffix("[]")
    return element if element in ARRAY_ELEMENTS else None


@dataclass(frozen=True)
class ColumnType:
    """The column a property maps to, and the msgspec type its values are decoded as."""

    pg_type: str
    # integer | number | string | boolean | date-time | date | time | uuid | json | multi | base16 | base64
    json_kind: str

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
    "base16": str,
    "base64": str,
}


def column_type(schema: dict[str, Any], *, interpret_content_encoding: bool = False) -> ColumnType:
    """Map one property schema (types, format, anyOf/oneOf, x-sql-datatype) to a column. With
    `interpret_content_encoding`, base16 and base64 strings (`contentEncoding`) are bytea."""
    schema = resolved(schema)
    kinds = _json_kinds(schema)
    if (declared := schema.get("x-sql-datatype")) is not None:
        pg_type = normalize(str(declared))
        if pg_type not in COLUMNS:
            raise UnsupportedSchema(f"x-sql-datatype {declared!r} is not supported")
        plain = {k: v for k, v in schema.items() if k != "x-sql-datatype"}
        natural = column_type(plain, interpret_content_encoding=interpret_content_encoding)
        return ColumnType(pg_type, natural.json_kind if kinds else "multi")
    if not kinds or kinds & {"object", "array"}:
        return ColumnType("jsonb", "json")
    if len(kinds) > 1:
        if kinds <= {"integer", "number"}:
            return ColumnType("numeric", "number")
        return ColumnType("text", "multi")
    kind = next(iter(kinds))
    if kind == "integer":
        return ColumnType("bigint" if int64_bounds(schema) else INTEGER_NUMERIC, "integer")
    if kind == "number":
        return ColumnType("numeric", "number")
    if kind == "boolean":
        return ColumnType("boolean", "boolean")
    encoding = schema.get("contentEncoding")
    if interpret_content_encoding and isinstance(encoding, str) and encoding.lower() in CONTENT_ENCODINGS:
        return ColumnType("bytea", encoding.lower())
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


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def int64_bounds(schema: dict[str, Any]) -> bool:
    """Whether every bound the schema gives an integer lies within int64 (no bound: yes)."""
    return all(_bound_fits(schema.get(key)) for key in _BOUNDS)


def _bound_fits(bound: Any) -> bool:
    if bound is None:
        return True
    return isinstance(bound, int | float) and not isinstance(bound, bool) and INT64_MIN <= bound <= INT64_MAX


def resolved(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with an `anyOf`/`oneOf` of one non-null option (`[{string, date-time}, {null}]`, how SDK
    taps declare nullable formatted values) replaced by that option, so its format and bounds apply."""
    options = schema.get("anyOf") or schema.get("oneOf")
    if not isinstance(options, list):
        return schema
    real = [o for o in options if isinstance(o, dict) and not _null_only(o)]
    if len(real) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
    option = resolved(real[0])
    if len(real) != len(options):  # a null option: the value may be null
        declared = option.get("type")
        if isinstance(declared, str):
            option = {**option, "type": [declared, "null"]}
        elif isinstance(declared, list) and "null" not in declared:
            option = {**option, "type": [*declared, "null"]}
    return {**rest, **option}


def _null_only(schema: dict[str, Any]) -> bool:
    declared = schema.get("type")
    return declared == "null" or (isinstance(declared, list) and set(declared) == {"null"})


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
    if isinstance(declared, str):
        types = {declared}
    elif isinstance(declared, list) and all(isinstance(t, str) for t in declared):
        types = set(declared)
    else:
        raise UnsupportedSchema(f"'type' must be a JSON Schema type name or a list of them, got {declared!r}")
    unknown = sorted(types - JSON_TYPES)
    if unknown:
        raise UnsupportedSchema(
            f"unknown JSON Schema type {unknown[0]!r} (one of {', '.join(sorted(JSON_TYPES))})"
        )
    return types - {"null"}


JSON_TYPES = frozenset({"null", "boolean", "object", "array", "number", "integer", "string"})


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
    if wanted == "jsonb" and existing.endswith("[]"):
        return "jsonb"
    return "text"


_INTEGERS = ("smallint", "integer", "bigint")
_TIMESTAMPS = ("timestamp with time zone", "timestamp without time zone")


def adopt(existing: str, wanted: str) -> str:
    """The type an existing column should have for a property that wants `wanted`: the column's own type
    wherever every value the property can send fits it exactly, else `widen`'s.

    - a `timestamp` (without time zone) column takes date-times as their UTC instant, dates as midnight;
    - an ARRAY column of a known element type takes JSON arrays (objects and other arrays are jsonb
      elements, or JSON text in a text array);
    - an integer column takes integers, including those of a numeric-for-integers schema, until one
      does not fit (the column is then widened to numeric, see codec.py);
    - `json` takes what `jsonb` takes; text takes everything.
    """
    spelled = " ".join(wanted.lower().split())
    current, wanted = normalize(existing), normalize(wanted)
    if current == wanted or current == "text":
        return current
    if current in _TIMESTAMPS and wanted in (*_TIMESTAMPS, "date"):
        return current
    if wanted == "jsonb" and (current == "json" or array_element(current) is not None):
        return current
    if current in _INTEGERS and (wanted in _INTEGERS or spelled == INTEGER_NUMERIC):
        return current
    return widen(current, wanted)


def python_type(pg_type: str) -> Any:
    """What msgspec decodes a value for a `pg_type` column into (an ARRAY's: its JSON text)."""
    pg_type = normalize(pg_type)
    if pg_type.endswith("[]"):
        return Raw
    return COLUMNS[pg_type].python


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
        # msgspec takes int64 bounds only; the codec checks the others itself (`wide_bounds`)
        if _bound_fits(value) and value is not None and decode_type is int:
            meta[arg] = value
    if decode_type is str:
        for key, arg in (("minLength", "min_length"), ("maxLength", "max_length"), ("pattern", "pattern")):
            if key in schema:
                meta[arg] = schema[key]
    return Annotated[decode_type, Meta(**meta)] if meta else decode_type


def wide_bounds(schema: dict[str, Any]) -> tuple[Any, Any, Any, Any] | None:
    """(minimum, maximum, exclusiveMinimum, exclusiveMaximum) when one of them lies beyond int64 (which
    msgspec cannot check), else None."""
    if int64_bounds(schema):
        return None
    found = [schema.get(key) for key in _BOUNDS]
    return tuple(b if isinstance(b, int | float) and not isinstance(b, bool) else None for b in found)  # type: ignore[return-value]


def is_secret(schema: dict[str, Any]) -> bool:
    """Whether the schema marks the property's values as secret (never shown in an error)."""
    return bool(schema.get("secret") or schema.get("writeOnly"))


JSON_NULL = b"null"


def is_json_null(raw: Raw) -> bool:
    return len(raw) == 4 and bytes(raw) == JSON_NULL
