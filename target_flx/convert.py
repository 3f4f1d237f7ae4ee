"""From the value a property's JSON type decodes to, to the value its (possibly wider) column takes.

Most columns need nothing: the decoded value already is what the binary COPY encoder (copybin.py) takes.
Only columns that were widened past the schema's type (an integer property in a text column, a date in a
timestamptz column) or that hold JSON need a per-value step, and only those pay for one.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import msgspec
from msgspec import Raw

from target_flx.types import is_json_null, normalize

Converter = Callable[[Any], Any]
_UTC = datetime.UTC


def raw_to_jsonb(raw: Raw | None) -> Raw | None:
    """JSON null (and a missing property) is SQL NULL, not the JSON value null."""
    return None if raw is None or is_json_null(raw) else raw


def _raw_to_text(raw: Raw | None) -> str | None:
    """A JSON value in a text column: a string as itself, anything else as its JSON text."""
    if raw is None or is_json_null(raw):
        return None
    text = bytes(raw)
    if text[:1] == b'"':
        decoded: str = msgspec.json.decode(text)
        return decoded
    return text.decode()


def _to_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return msgspec.json.encode(value).decode()


def _date_to_timestamptz(value: datetime.date | None) -> datetime.datetime | None:
    if value is None or isinstance(value, datetime.datetime):
        return value
    return datetime.datetime(value.year, value.month, value.day, tzinfo=_UTC)


def converter(json_kind: str, pg_type: str) -> Converter | None:
    """The per-value step from a `json_kind` value to a `pg_type` column, or None when none is needed."""
    pg_type = normalize(pg_type)
    if json_kind == "json":
        if pg_type in ("jsonb", "json") or pg_type.endswith("[]"):
            return raw_to_jsonb  # an ARRAY column's encoder reads the JSON array itself
        return _raw_to_text
    if pg_type == "text":
        return None if json_kind in ("string", "base16", "base64") else _to_text
    # a `timestamp without time zone` column gets the instant's UTC wall time from the encoder itself
    if pg_type in ("timestamp with time zone", "timestamp without time zone") and json_kind == "date":
        return _date_to_timestamptz
    if pg_type in ("jsonb", "json"):
        return lambda v: None if v is None else msgspec.json.encode(v)
    return None
