"""Log chunks as stored in `execution_logs`, and reading them back, without SQLAlchemy (quick to start).

See `flx.execution.logstore` for how they are written.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

MARKER = "flx ▸ "


def pack(lines: Sequence[str], level: int) -> bytes:
    return zlib.compress("\n".join(lines).encode("utf-8", "replace"), level)


def unpack(data: bytes, line_count: int) -> list[str]:
    lines = zlib.decompress(data).decode("utf-8", "replace").split("\n")
    return lines[:line_count] if line_count else []


@dataclass(frozen=True)
class Chunk:
    attempt: int
    first_line: int
    line_count: int
    data: bytes


def lines_after(chunks: Iterable[Chunk], after: int) -> tuple[list[str], int]:
    """The lines numbered `after` and later, and the number of the next line to ask for.

    Chunks may overlap where a reader saw both sides of a merge; each line is taken once.
    """
    out: list[str] = []
    following = after
    for chunk in sorted(chunks, key=lambda c: c.first_line):
        end = chunk.first_line + chunk.line_count
        if end <= following:
            continue
        lines = unpack(chunk.data, chunk.line_count)
        out.extend(lines[following - chunk.first_line :] if chunk.first_line < following else lines)
        following = end
    return out, following


def read_chunks(
    conn: psycopg.Connection[Any], schema: str, execution_id: uuid.UUID, after: int = 0
) -> list[Chunk]:
    """The chunks of an execution that hold lines numbered `after` or later."""
    query = sql.SQL(
        "SELECT attempt, first_line, line_count, data FROM {schema}.execution_logs "
        "WHERE execution_id = %(id)s AND first_line + line_count > %(after)s ORDER BY first_line"
    ).format(schema=sql.Identifier(schema))
    return [
        Chunk(a, f, n, bytes(d)) for a, f, n, d in conn.execute(query, {"id": execution_id, "after": after})
    ]
