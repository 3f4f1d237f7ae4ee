"""Stream and property names → PostgreSQL identifiers, as MeltanoLabs target-postgres makes them.

Names are kept exactly as sent and always quoted (`"TestCamel"."clientName"`, `"Mixed Case"`, `"with-dash"`,
`"dot.name"`), so a project that switches from MeltanoLabs target-postgres finds the same tables and
columns. A `schema-table` stream name picks the schema when no `default_target_schema` is set (the part
before the last dash, for names of two or three parts) and the table is the part after the last dash, as
in singer-sdk. Only a name over PostgreSQL's 63-byte limit changes (MeltanoLabs refuses those): a readable
prefix and a stable hash of the whole name, so two long names that share a prefix never collide and a
rerun finds the same column again.
"""

from __future__ import annotations

import hashlib
import re

MAX_IDENTIFIER_BYTES = 63
_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9_\-\.\s]")


def conform(name: str) -> str:
    """The identifier for a name: the name itself (PostgreSQL cannot name a column or table "")."""
    return name or "_"


def legacy_conform(name: str) -> str:
    """How earlier target-flx releases conformed names (singer-sdk's `SQLSink.conform_name`: snake-ish lower
    case, leading digit prefixed): tables and columns it made so are renamed to the name as sent."""
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
    """Property → column, unique: a clash after shortening gets a hash suffix (sorted, so deterministic)."""
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
