"""A resumable Singer tap for fault trials.

Every row is a pure function of its id, so after any sequence of failed and resumed runs the destination
table can be compared with what the tap sent, value for value. A run resumes from a STATE value the way a
real incremental tap does: it skips every record at or below its stream's bookmark.

    python -m tests.faults.generator --variant two_streams --total 1000 --state '{"bookmarks": ...}'
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from itertools import accumulate
from typing import Any, Literal

Variant = Literal["keyed", "append", "two_streams"]
VARIANTS: tuple[Variant, ...] = ("keyed", "append", "two_streams")

BASE_TIME = datetime(2024, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))
NOTE_PREFIX = "order #"
NOTE_SUFFIX = ' "ü" é \\ ok'
PROPERTIES: dict[str, Any] = {
    "id": {"type": "integer"},
    "amount": {"type": "number"},
    "ordered_at": {"type": "string", "format": "date-time"},
    "note": {"type": ["null", "string"]},
    "paid": {"type": ["null", "boolean"]},
}


def amount_cents(rid: int) -> int:
    return rid * 37 % 100_000


def fields(rid: int) -> dict[str, bytes]:
    """The record's properties as raw JSON texts, so a bad-line kind can replace one with any bytes."""
    cents = amount_cents(rid)
    return {
        "id": str(rid).encode(),
        "amount": f"{cents // 100}.{cents % 100:02d}".encode(),
        "ordered_at": json.dumps((BASE_TIME + timedelta(seconds=rid)).isoformat()).encode(),
        "note": json.dumps(f"{NOTE_PREFIX}{rid}{NOTE_SUFFIX}", ensure_ascii=False).encode(),
        "paid": b"true" if rid % 2 == 0 else b"false",
    }


def record_line(stream: str, values: Mapping[str, bytes]) -> bytes:
    body = b",".join(b'"' + name.encode() + b'":' + text for name, text in values.items())
    return b'{"type":"RECORD","stream":"' + stream.encode() + b'","record":{' + body + b"}}\n"


def _replace(name: str, text: bytes) -> Callable[[str, int], bytes]:
    def bad(stream: str, rid: int) -> bytes:
        return record_line(stream, {**fields(rid), name: text})

    return bad


def _truncated(stream: str, rid: int) -> bytes:
    line = record_line(stream, fields(rid))
    return line[: len(line) // 2] + b"\n"


def _without_key(stream: str, rid: int) -> bytes:
    values = fields(rid)
    del values["id"]
    return record_line(stream, values)


BAD_KINDS: dict[str, Callable[[str, int], bytes]] = {
    "string_in_numeric": _replace("amount", b'"12.50 EUR"'),
    "truncated_json": _truncated,
    "invalid_utf8": _replace("note", b'"order \xff\xfe\xc0\xaf"'),
    "null_key": _replace("id", b"null"),
    "missing_key": _without_key,
    "impossible_datetime": _replace("ordered_at", b'"2024-02-30T00:00:00Z"'),
}


@dataclass(frozen=True)
class BadLine:
    """Replace the `position`-th RECORD line of a run's output (1-based) with a bad one."""

    position: int
    kind: str


def bookmarks_of(state: Any) -> dict[str, int]:
    """The per-stream last ids of a STATE value this tap emitted."""
    return {stream: int(mark["id"]) for stream, mark in state["bookmarks"].items()}


def state_line(marks: Mapping[str, int]) -> bytes:
    value = {"bookmarks": {stream: {"id": last} for stream, last in marks.items()}}
    return json.dumps({"type": "STATE", "value": value}).encode() + b"\n"


@dataclass(frozen=True)
class Feed:
    """What the tap sends: `total` records over its streams, a STATE after every `state_every`-th."""

    variant: Variant = "keyed"
    total: int = 24_000
    state_every: int = 100
    block: int = 250  # records of one stream in a row, in the two-stream variant

    @property
    def streams(self) -> tuple[str, ...]:
        return ("orders", "refunds") if self.variant == "two_streams" else ("orders",)

    @property
    def keys(self) -> list[str]:
        return [] if self.variant == "append" else ["id"]

    @property
    def per_stream(self) -> int:
        return self.total // len(self.streams)

    def final_state(self) -> dict[str, Any]:
        """The value of the last STATE of a complete input."""
        return {"bookmarks": {stream: {"id": self.per_stream} for stream in self.streams}}

    def sequence(self) -> Iterator[tuple[str, int]]:
        """(stream, id) of every record of a run from scratch, in order."""
        streams, n = self.streams, self.per_stream
        if len(streams) == 1:
            yield from ((streams[0], rid) for rid in range(1, n + 1))
            return
        for start in range(1, n + 1, self.block):
            for stream in streams:
                yield from ((stream, rid) for rid in range(start, min(start + self.block, n + 1)))

    def schema_lines(self) -> list[bytes]:
        return [
            json.dumps(
                {
                    "type": "SCHEMA",
                    "stream": stream,
                    "key_properties": self.keys,
                    "schema": {"type": "object", "properties": PROPERTIES},
                }
            ).encode()
            + b"\n"
            for stream in self.streams
        ]

    def render(
        self, after: Mapping[str, int] | None = None, *, bad: BadLine | None = None, until: int | None = None
    ) -> Rendering:
        """The run's whole input, resuming after the bookmarks `after`; `until` stops after that many
        records of the full sequence (resumed or not)."""
        after = dict(after or {})
        marks = {stream: after.get(stream, 0) for stream in self.streams}
        out = Rendering(self.schema_lines())
        since_state = False
        for ordinal, (stream, rid) in enumerate(self.sequence(), start=1):
            if until is not None and ordinal > until:
                break
            if rid > after.get(stream, 0):
                position = len(out.record_lines) + 1
                if bad is not None and bad.position == position:
                    out.bad_line = len(out.lines) + 1
                    out.lines.append(BAD_KINDS[bad.kind](stream, rid))
                else:
                    out.lines.append(record_line(stream, fields(rid)))
                out.record_lines.append(len(out.lines) - 1)
                marks[stream] = rid
                since_state = True
            if ordinal % self.state_every == 0 and since_state:
                out.lines.append(state_line(marks))
                since_state = False
        if since_state:
            out.lines.append(state_line(marks))
        return out


@dataclass
class Rendering:
    """A run's input as lines, with where each RECORD is."""

    lines: list[bytes]
    record_lines: list[int] = field(default_factory=list)  # line index of the k-th RECORD at [k - 1]
    bad_line: int | None = None  # 1-based line number of the injected bad line

    @cached_property
    def data(self) -> bytes:
        return b"".join(self.lines)

    @cached_property
    def ends(self) -> list[int]:
        return list(accumulate(len(line) for line in self.lines))

    @property
    def records(self) -> int:
        return len(self.record_lines)

    def line_number_of_record(self, position: int) -> int:
        return self.record_lines[position - 1] + 1

    def end_of_record(self, position: int) -> int:
        """Byte offset just past the `position`-th RECORD line."""
        return self.ends[self.record_lines[position - 1]]

    def cut_inside_record(self, position: int) -> tuple[bytes, int]:
        """The input as a tap that died while writing the `position`-th RECORD left it, and that
        line's number."""
        index = self.record_lines[position - 1]
        start = self.ends[index - 1] if index else 0
        return self.data[: start + len(self.lines[index]) // 2], index + 1


def write_paced(
    fd: int,
    data: bytes,
    *,
    chunk: int = 1 << 16,
    pause: float = 0.0,
    hold: tuple[int, float] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Write `data` to a pipe in chunks, sleeping `pause` after each (and `hold[1]` seconds once the first
    `hold[0]` bytes are out), so that a fault can land between any two batches. Returns the bytes written:
    fewer than `len(data)` when the reader went away."""
    written = 0
    view = memoryview(data)
    held = hold is None
    try:
        while written < len(data):
            end = min(written + chunk, len(data))
            if not held and hold is not None and written < hold[0] < end:
                end = hold[0]
            written += os.write(fd, view[written:end])
            if on_progress is not None:
                on_progress(written)
            if not held and hold is not None and written >= hold[0]:
                held = True
                time.sleep(hold[1])
            elif pause:
                time.sleep(pause)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return written


def main(argv: list[str] | None = None) -> None:
    """Write a run's input to stdout, for reproducing a trial by hand."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--variant", choices=VARIANTS, default="keyed")
    parser.add_argument("--total", type=int, default=24_000)
    parser.add_argument("--state-every", type=int, default=100)
    parser.add_argument("--state", help="a STATE value to resume from (JSON)")
    parser.add_argument("--bad", help="POSITION:KIND, one of: " + ", ".join(BAD_KINDS))
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between 64 KiB chunks")
    args = parser.parse_args(argv)
    bad = None
    if args.bad:
        position, kind = args.bad.split(":", 1)
        bad = BadLine(int(position), kind)
    feed = Feed(args.variant, args.total, args.state_every)
    after = bookmarks_of(json.loads(args.state)) if args.state else None
    write_paced(sys.stdout.fileno(), feed.render(after, bad=bad).data, pause=args.pause)


if __name__ == "__main__":
    main()
