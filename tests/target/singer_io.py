"""Building Singer input for tests."""

from __future__ import annotations

from typing import Any

import msgspec

_ENCODER = msgspec.json.Encoder(decimal_format="number")  # Decimals become exact JSON numbers


def singer(*messages: dict[str, Any]) -> str:
    return "".join(_ENCODER.encode(m).decode() + "\n" for m in messages)


def schema_msg(stream: str, properties: dict[str, Any], keys: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "key_properties": keys or [],
        "schema": {"type": "object", "properties": properties},
    }


def record(stream: str, rec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "RECORD", "stream": stream, "record": rec, **extra}


def state(value: Any) -> dict[str, Any]:
    return {"type": "STATE", "value": value}
