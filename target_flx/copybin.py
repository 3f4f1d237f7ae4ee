"""Decoded records → one PostgreSQL binary COPY stream per batch.

The C extension `_copybin` does the work: one call per batch reads each record's fields out of the
msgspec structs and appends every value in its column's binary form, so no per-record tuple and no
per-value Python call is made (asyncpg's `copy_records_to_table` costs ~5 µs a record here, most of the
load's Python time). Numbers go to numeric columns in binary too, from their exact JSON text, so an append
COPYs straight into the table with no staging table for PostgreSQL to parse them from.

Each value's encoding is defined once, by its kind's reference encoder (kinds.py, pgbinary.py); the
extension calls it for what it does not handle itself. Without the extension (a machine without a C
compiler) a batch goes through a loop generated for its column layout with a fast field encoder per kind
(about 1.8x the plain loop's speed on a whole load, see bench/README.md), and a batch holding an invalid
value through the plain reference loop, which names it. Tests compare all three with each other and with
PostgreSQL's own `*_send` output.
"""

from __future__ import annotations

import datetime
import functools
import os
import re
import struct
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from target_flx.kinds import COLUMNS, ELEMENTS, Kind, encode_value
from target_flx.pgbinary import INT32, NULL, PG_EPOCH_ORDINAL, epoch_us
from target_flx.reasons import EncodeFailure, Invalid, Reason
from target_flx.types import normalize

try:
    from target_flx import _copybin
except ImportError:  # pragma: no cover - exercised by forcing the Python path in tests
    _copybin = None  # type: ignore[assignment]

__all__ = ["CONST", "EXTRACTED", "FIELD", "VERSION", "PlanColumn", "column_kind", "encode", "encode_value"]

FIELD, EXTRACTED, CONST, VERSION = 0, 1, 2, 3  # the C encoder's `enum Source`
HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
TRAILER = b"\xff\xff"


class PlanColumn(NamedTuple):
    """Where a column's value comes from and how it is encoded (the extension reads these as tuples)."""

    source: int  # FIELD: record attribute `arg`; EXTRACTED: `arg[message.time_extracted]`; CONST: `arg`
    arg: Any
    kind: int
    converter: Callable[[Any], Any] | None


def kind_of(pg_type: str) -> int:
    """The encoder kind of a column type (an ARRAY's: `Kind.ARRAY` + its element's)."""
    pg_type = normalize(pg_type)
    if pg_type.endswith("[]"):
        element = pg_type.removesuffix("[]")
        return Kind.ARRAY + (ELEMENTS.get(element) or COLUMNS[element]).kind
    return COLUMNS[pg_type].kind


def column_kind(pg_type: str, json_kind: str) -> int:
    """The encoder kind for a property of `json_kind` in a `pg_type` column."""
    kind = kind_of(pg_type)
    if kind == Kind.BYTEA and json_kind == "base16":
        return Kind.BYTEA_BASE16
    if kind == Kind.BYTEA and json_kind == "base64":
        return Kind.BYTEA_BASE64
    return kind


def encode(messages: list[Any], plan: Sequence[PlanColumn]) -> bytes | EncodeFailure:
    """The COPY stream for `messages`, or where the first invalid value is."""
    plan = tuple(plan)
    fallback = _Fallback(plan)
    if _copybin is not None and not _FORCE_PYTHON:
        result = _copybin.encode(messages, plan, fallback)
        return result if isinstance(result, bytes) else _failure(messages, plan, *result)
    return encode_generated(messages, plan)


def encode_generated(messages: list[Any], plan: tuple[PlanColumn, ...]) -> bytes | EncodeFailure:
    """The Python path: the generated loop, and the reference loop to name an invalid value."""
    try:
        return _encode_fast_python(messages, plan)
    except (ValueError, TypeError, AttributeError, OverflowError, struct.error):
        return encode_reference(messages, plan)


# TARGET_FLX_ENCODER=python: batches encoded in Python, as on a machine without the extension (tests run
# the load path both ways; also a way out should the extension ever misbehave).
_FORCE_PYTHON = os.environ.get("TARGET_FLX_ENCODER") == "python"


def use_python(force: bool) -> None:
    global _FORCE_PYTHON
    _FORCE_PYTHON = force


def extension_built() -> bool:
    return _copybin is not None


class _Fallback:
    """What the extension calls for a value it does not encode itself: the kind's reference encoder."""

    def __init__(self, plan: tuple[PlanColumn, ...]) -> None:
        self.kinds = [c.kind for c in plan]

    def __call__(self, column: int, value: Any) -> bytes | None:
        return encode_value(self.kinds[column], value)


def _failure(
    messages: list[Any], plan: tuple[PlanColumn, ...], row: int, column: int, why: int | ValueError
) -> EncodeFailure:
    """The failure from what an encoder found: the C encoder's own reason number, or the `Invalid` (or
    another ValueError) its fallback raised."""
    if isinstance(why, Invalid):
        reason, detail, got = why.reason, why.detail, why.got
    elif isinstance(why, int):
        reason, detail, got = Reason(why), "", ""
    else:
        reason, detail, got = Reason.INVALID, str(why), ""
    col, message = plan[column], messages[row]
    if col.source == FIELD:
        value = getattr(message.record, col.arg)
    elif col.source == EXTRACTED:
        value = message.time_extracted
    elif col.source == CONST:
        value = col.arg
    else:
        value = message.version
    return EncodeFailure(row, column, reason, value, detail, got)


def encode_reference(messages: list[Any], plan: tuple[PlanColumn, ...]) -> bytes | EncodeFailure:
    """The plain loop: every value through its kind's reference encoder."""
    parts = [HEADER]
    count = struct.pack("!h", len(plan))
    kinds = [col.kind for col in plan]
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
                parts.append(NULL)
                continue
            if preencoded and type(value) is bytes:
                encoded: bytes | None = value
            else:
                try:
                    encoded = encode_value(kinds[c], value)
                except ValueError as exc:
                    return _failure(messages, plan, r, c, exc)
            parts.append(NULL if encoded is None else INT32.pack(len(encoded)) + encoded)
    parts.append(TRAILER)
    return b"".join(parts)


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
        "NULL": NULL,
        "PRE": lambda v: INT32.pack(len(v)) + v,
    }
    exec(compile("\n".join(lines) + "\n", "<target_flx.copybin>", "exec"), namespace)
    build: Callable[..., None] = namespace["build"]
    return build


def _generic_field(kind: int) -> Callable[[Any], bytes]:
    def field(value: Any) -> bytes:
        encoded = encode_value(kind, value)
        return NULL if encoded is None else INT32.pack(len(encoded)) + encoded

    return field


def _timestamp_field(value: Any) -> bytes:
    if type(value) is not datetime.datetime:
        raise TypeError("not a datetime")
    return _I8_FIELD.pack(8, epoch_us(value))


def _uuid_field(value: Any) -> bytes:
    if type(value) is not str or not _CANONICAL_UUID.fullmatch(value):
        return _GENERIC_UUID(value)
    return _UUID_LENGTH + bytes.fromhex(value.replace("-", ""))


def _jsonb_field(value: Any) -> bytes:
    data = bytes(value) if type(value) is not str else value.encode()
    if type(value) is not str and data == b"null":
        return NULL
    return INT32.pack(len(data) + 1) + b"\x01" + data


def _text_field(value: Any) -> bytes:
    data = value.encode() if type(value) is str else str(value).encode()
    return INT32.pack(len(data)) + data


def _typed(kind: int, typ: type, fast: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    generic = _generic_field(kind)
    return lambda value: fast(value) if type(value) is typ else generic(value)


# The generated loop's encoders: the value's length and bytes in one step for the usual Python type, the
# reference encoder for anything else (kinds without one here use the reference directly).
_INT16 = struct.Struct("!h")
_I2_FIELD, _I4_FIELD, _I8_FIELD = struct.Struct("!ih"), struct.Struct("!ii"), struct.Struct("!iq")
_F8_FIELD = struct.Struct("!id")
_EPOCH = PG_EPOCH_ORDINAL
_UUID_LENGTH = b"\x00\x00\x00\x10"
_GENERIC_UUID = _generic_field(Kind.UUID)
_TRUE, _FALSE = b"\x00\x00\x00\x01\x01", b"\x00\x00\x00\x01\x00"
_CANONICAL_UUID = re.compile("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_FIELD_ENCODERS: dict[int, Callable[[Any], bytes]] = {
    Kind.INT2: _typed(Kind.INT2, int, lambda v: _I2_FIELD.pack(2, v)),
    Kind.INT4: _typed(Kind.INT4, int, lambda v: _I4_FIELD.pack(4, v)),
    Kind.INT8: _typed(Kind.INT8, int, lambda v: _I8_FIELD.pack(8, v)),
    Kind.FLOAT8: _typed(Kind.FLOAT8, float, lambda v: _F8_FIELD.pack(8, v)),
    Kind.BOOL: _typed(Kind.BOOL, bool, lambda v: _TRUE if v else _FALSE),
    Kind.TEXT: _typed(Kind.TEXT, str, _text_field),
    Kind.DATE: _typed(Kind.DATE, datetime.date, lambda v: _I4_FIELD.pack(4, v.toordinal() - _EPOCH)),
    Kind.TIMESTAMPTZ: _timestamp_field,
    Kind.UUID: _uuid_field,
    Kind.JSONB: _jsonb_field,
}
