"""Input framing: bytes lines from stdin in large chunks, with a wake-up when the input goes quiet.

Reading 1 MiB at a time and splitting is several times faster than line iteration, and handing the lines
on a chunk at a time lets the reader take a run of RECORDs of one stream in one step. When a tap pauses,
`on_idle` runs so that records already received get committed (and their STATE emitted) instead of
waiting in a buffer for the next line.
"""

from __future__ import annotations

import io
import os
import select
from collections.abc import Callable, Iterator
from typing import IO, Any

CHUNK = 1 << 20
NUL_ESCAPE = b"\\u0000"


def iter_chunks(
    source: IO[Any], idle_seconds: float, on_idle: Callable[[], bool]
) -> Iterator[tuple[list[bytes], bool]]:
    """Yield (lines without their newline, whether any of them may hold a NUL escape), a read at a time.
    `on_idle()` returns True when it still has work waiting."""
    fd = _fileno(source)
    if fd is None:
        lines = [line.encode() if isinstance(line, str) else line for line in source]
        for start in range(0, len(lines), 4096):
            part = [line.rstrip(b"\n") for line in lines[start : start + 4096]]
            yield part, any(NUL_ESCAPE in line for line in part)
        return
    carry = b""
    while True:
        if select.select([fd], [], [], idle_seconds)[0] == []:
            while on_idle() and select.select([fd], [], [], idle_seconds)[0] == []:
                pass
        chunk = os.read(fd, CHUNK)
        if not chunk:
            break
        lines = chunk.split(b"\n")
        lines[0] = carry + lines[0]
        carry = lines.pop()
        if lines:  # the first line is the only one with bytes from an earlier read: checked whole
            yield lines, NUL_ESCAPE in chunk or NUL_ESCAPE in lines[0]
    if carry:
        yield [carry], NUL_ESCAPE in carry


def _fileno(source: IO[Any]) -> int | None:
    """A real file descriptor to read from directly (nothing has been read through `source` yet)."""
    if isinstance(source, io.StringIO | io.BytesIO):
        return None
    buffer = getattr(source, "buffer", source)
    try:
        return int(buffer.fileno())
    except (AttributeError, OSError, ValueError):
        return None
