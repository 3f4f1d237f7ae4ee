"""PostgreSQL binary encoders that asyncpg's built-ins get wrong or make slow for us.

asyncpg maps date.min/date.max and datetime.min/max to -infinity/infinity, but 0001-01-01 and
9999-12-31 are real dates in real warehouses; these encoders send them as the dates they are. A value
that is already `bytes` is sent as it is, which lets per-batch constants be encoded once per batch.
"""

from __future__ import annotations

import datetime
import struct
from typing import Any

import asyncpg

_PG_EPOCH_ORDINAL = datetime.date(2000, 1, 1).toordinal()
_PG_EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
_PG_EPOCH_NAIVE = datetime.datetime(2000, 1, 1)
_INT32 = struct.Struct("!i")
_INT64 = struct.Struct("!q")
_DAY_US = 86_400_000_000


def encode_date(value: Any) -> bytes:
    if type(value) is bytes:
        return value
    return _INT32.pack(value.toordinal() - _PG_EPOCH_ORDINAL)


def encode_timestamptz(value: Any) -> bytes:
    """A naive value is UTC.

    Computed from the fields: subtracting an aware epoch from a value in another zone costs more than
    the rest of the row. Each distinct zone's offset is looked up once (msgspec shares zone objects).
    """
    if type(value) is bytes:
        return value
    zone = value.tzinfo
    offset = _OFFSETS.get(zone)
    if offset is None:
        offset = _offset_us(value)
        if zone is None or type(zone) is datetime.timezone:  # fixed offsets only: a ZoneInfo's varies
            _OFFSETS[zone] = offset
    return _INT64.pack(
        (
            (value.toordinal() - _PG_EPOCH_ORDINAL) * 86_400
            + value.hour * 3600
            + value.minute * 60
            + value.second
        )
        * 1_000_000
        + value.microsecond
        - offset
    )


_OFFSETS: dict[Any, int] = {}


def _offset_us(value: datetime.datetime) -> int:
    offset = value.utcoffset()
    if offset is None:
        return 0
    return (offset.days * 86_400 + offset.seconds) * 1_000_000 + offset.microseconds


def encode_timestamp(value: Any) -> bytes:
    if type(value) is bytes:
        return value
    delta = value.replace(tzinfo=None) - _PG_EPOCH_NAIVE
    return _INT64.pack(delta.days * _DAY_US + delta.seconds * 1_000_000 + delta.microseconds)


def encode_jsonb(value: Any) -> bytes:
    """Version byte 1 + the JSON text exactly as the tap wrote it (a msgspec.Raw, bytes or str)."""
    if isinstance(value, str):
        return b"\x01" + value.encode()
    return b"\x01" + value


async def register(conn: asyncpg.Connection) -> None:
    for type_name, encoder in (
        ("jsonb", encode_jsonb),
        ("date", encode_date),
        ("timestamptz", encode_timestamptz),
        ("timestamp", encode_timestamp),
    ):
        decoder = _decode_jsonb if type_name == "jsonb" else bytes
        await conn.set_type_codec(
            type_name, schema="pg_catalog", encoder=encoder, decoder=decoder, format="binary"
        )


def _decode_jsonb(data: bytes) -> str:
    return data[1:].decode()
