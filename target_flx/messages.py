"""Routing input lines by message type without decoding RECORD bodies twice.

singer-sdk taps (and most others) write `{"type": "RECORD", "stream": "…", …}` in that order, so the
stream of a RECORD is read from the line's first bytes; its body is decoded later, a batch at a time.
Anything else is decoded once here.
"""

from __future__ import annotations

from typing import Any

import msgspec

_PREFIXES = (b'{"type": "RECORD", "stream": "', b'{"type":"RECORD","stream":"')


_generic = msgspec.json.Decoder()


def record_stream(line: bytes) -> str | None:
    """The stream of a RECORD line in the common layout, else None (then the line is decoded whole)."""
    if prefix := record_prefix(line):
        return prefix[prefix.index(b'"stream"') + 8 :].lstrip(b": ")[1:-1].decode()
    return None


def record_prefix(line: bytes) -> bytes | None:
    """`{"type":"RECORD","stream":"NAME"` of a RECORD line in the common layout: every following line that
    starts with the same bytes is a RECORD of the same stream."""
    for prefix in _PREFIXES:
        if line.startswith(prefix):
            end = line.find(b'"', len(prefix))
            if end > 0 and b"\\" not in line[len(prefix) : end]:
                return line[: end + 1]
    return None


def decode(line: bytes) -> dict[str, Any]:
    message = _generic.decode(line)
    if not isinstance(message, dict):
        raise msgspec.ValidationError("a Singer message must be a JSON object")
    return message
