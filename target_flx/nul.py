"""NUL characters: PostgreSQL text and jsonb cannot hold U+0000.

Without `sanitize_null_text_characters` a NUL is bad input (named by stream, line and field); with it,
NULs are removed, as MeltanoLabs target-postgres does. Only lines containing the escape get here.
"""

from __future__ import annotations

import decimal
from typing import Any

import msgspec

from target_flx.errors import InputError

_decoder = msgspec.json.Decoder(float_hook=decimal.Decimal)
_encoder = msgspec.json.Encoder(decimal_format="number")


def strip_nul(line: bytes, stream: str, line_number: int, *, sanitize: bool) -> bytes:
    message = _decoder.decode(line)
    record = message.get("record") if isinstance(message, dict) else None
    if not isinstance(record, dict):
        return line
    fields = [key for key, value in record.items() if _has_nul(key) or _has_nul(value)]
    if not fields:
        return line  # the escape was itself escaped ("\\u0000" is a backslash and "u0000")
    if not sanitize:
        raise InputError(
            "text contains a NUL character (U+0000), which PostgreSQL cannot store; "
            "set sanitize_null_text_characters to remove them",
            stream=stream,
            line=line_number,
            field=fields[0],
        )
    message["record"] = _clean(record)
    return _encoder.encode(message)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value
