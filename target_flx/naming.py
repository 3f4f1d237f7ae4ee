"""Stream and property names → PostgreSQL identifiers, compatible with singer-sdk SQL targets.

Names are conformed the way singer-sdk's SQLSink does (so tables made by MeltanoLabs target-postgres keep
their columns when a project switches), then shortened to PostgreSQL's 63-byte limit with a stable hash
suffix, so two long names that share a prefix never collide and a rerun finds the same column again.
"""

from __future__ import annotations

import hashlib
import re

MAX_IDENTIFIER_BYTES = 63
_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9_\-\.\s]")


def conform(name: str) -> str:
    """singer-sdk's `SQLSink.conform_name`: snake-ish lower case, leading digit replaced."""
    name = _NOT_ALLOWED.sub("", name).lower().strip().replace(".", "_").replace("-", "_").replace(" ", "_")
    if name and name[0].isdigit():
        name = "_" + name
    return name or "_"


def shorten(name: str, original: str | None = None) -> str:
    """Fit into 63 bytes: keep a readable prefix, add 8 hex digits of a hash of the full original name."""
    if len(name.encode()) <= MAX_IDENTIFIER_BYTES:
        return name
    digest = hashlib.sha1((original or name).encode()).hexdigest()[:8]
    prefix = name.encode()[: MAX_IDENTIFIER_BYTES - 9].decode(errors="ignore")
    return f"{prefix}_{digest}"


def column_names(properties: list[str]) -> dict[str, str]:
    """Property → column, unique: a clash after conforming gets a hash suffix (sorted, so deterministic)."""
    result: dict[str, str] = {}
    taken: set[str] = set()
    for prop in sorted(properties, key=lambda p: (conform(p) != p, p)):
        column = shorten(conform(prop), prop)
        if column in taken:
            digest = hashlib.sha1(prop.encode()).hexdigest()[:8]
            column = shorten(f"{column}_{digest}", prop)
        taken.add(column)
        result[prop] = column
    return {prop: result[prop] for prop in properties}


def table_location(stream: str, default_schema: str | None) -> tuple[str, str]:
    """(schema, table) for a stream; `schema-table` stream names pick the schema, as in singer-sdk."""
    parts = stream.split("-")
    table = stream if len(parts) == 1 else parts[-1]
    if default_schema:
        schema = default_schema
    elif len(parts) in (2, 3):
        schema = conform(parts[-2])
    else:
        schema = "public"
    return shorten(schema), shorten(conform(table), stream)


def quote(identifier: str) -> str:
    """A double-quoted SQL identifier (embedded quotes doubled)."""
    return '"' + identifier.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{quote(schema)}.{quote(table)}"
