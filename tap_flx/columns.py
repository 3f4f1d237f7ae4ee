"""How a control-schema column is described (JSON Schema) and read (a SQL expression).

Values are turned into their JSON form by PostgreSQL, not per row in Python: uuids arrive as text and
timestamps as ISO 8601 text in UTC with microseconds — the exact string singer-sdk itself writes for a
datetime bookmark, so replication-key values in records and in state compare as strings. That lets the
stream skip singer-sdk's per-record type conformance. Numerics arrive as `Decimal` (written as exact JSON
numbers) and jsonb as dicts whose non-integer numbers are `Decimal` too (see source.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    Numeric,
    String,
    Text,
    case,
    cast,
    func,
    literal_column,
    null,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.sql.elements import ColumnElement

# singer-sdk's own datetime form (helpers._typing._datetime_to_json_compatible) for UTC instants
ISO_UTC = 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'


class UnsupportedColumn(TypeError):
    """A model column of a type this module does not map (add it here when the models grow one)."""


def json_schema(column: Column[Any]) -> dict[str, Any]:
    """The property schema of `column`: its exact JSON type, `null` allowed when the column is nullable."""
    kind = column.type
    schema: dict[str, Any]
    if isinstance(kind, UUID):
        schema = {"type": ["string"], "format": "uuid"}
    elif isinstance(kind, DateTime):
        schema = {"type": ["string"], "format": "date-time"}
    elif isinstance(kind, Integer):  # BigInteger and SmallInteger are Integers
        schema = {"type": ["integer"]}
    elif isinstance(kind, Numeric):
        schema = {"type": ["number"]}
    elif isinstance(kind, Boolean):
        schema = {"type": ["boolean"]}
    elif isinstance(kind, JSONB):
        schema = {"type": ["object"]}
    elif isinstance(kind, Text | String):
        schema = {"type": ["string"]}
    else:
        raise UnsupportedColumn(f"{column.table.name}.{column.name}: {kind!r}")
    if column.nullable:
        schema["type"].append("null")
    return schema


def read_expression(column: Column[Any]) -> ColumnElement[Any]:
    """The SELECT expression that yields `column`'s value already in its JSON form."""
    kind = column.type
    expression: ColumnElement[Any]
    if isinstance(kind, UUID):
        expression = cast(column, Text)
    elif isinstance(kind, DateTime):
        # timezone('UTC', …) is the instant's UTC wall time, whatever the session's TimeZone
        expression = func.to_char(func.timezone("UTC", column), ISO_UTC)
    elif isinstance(kind, Numeric):
        # JSON has no NaN or infinity; singer-sdk writes those as null too
        special = column.in_([literal_column(f"'{v}'::numeric") for v in ("NaN", "Infinity", "-Infinity")])
        expression = case((special, null()), else_=column)
    else:
        expression = column
    return expression.label(column.name)
