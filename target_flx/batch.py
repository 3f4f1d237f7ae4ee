"""One batch of a stream's RECORD lines → the binary COPY payload, its rejects, or where it went wrong.

Decoding and encoding never raise for bad input: a bad record either goes to quarantine (with the batch)
or ends the batch there, and the batch reports the error with the valid records before it, so those can
still be committed and their STATE emitted, and nothing after the bad line is.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any

import msgspec

from target_flx.codec import BatchMeta, Column, RecordCodec, Refused, input_error
from target_flx.errors import InputError
from target_flx.failures import Failure
from target_flx.reasons import Reason
from target_flx.types import INTEGER_RANGES, normalize

# The bounds of the integer column types: a value beyond one of them widens an integer column to numeric.
_COLUMN_LIMITS = frozenset(limit for lo, hi in INTEGER_RANGES.values() for limit in (f"<= {hi}", f">= {lo}"))


@dataclass(frozen=True)
class Reject:
    """A quarantined record: (stream, line, field, error, raw line) as the quarantine table keeps it."""

    stream: str
    line: int
    field: str | None
    error: str
    raw: str
    position: int  # in its batch's lines (-1: refused before buffering)


@dataclass
class Batch:
    payload: bytes
    count: int
    keys: list[Any]  # the batch's keys, in order (upserts only)
    rejects: list[Reject] = field(default_factory=list)
    error: InputError | None = None  # the records from `error.line` on are not in the batch


class BatchBuilder:
    """Turns a stream's buffered lines into a `Batch`; `widen` is asked for a numeric column (and returns
    the codec for the new layout) when an integer does not fit its column."""

    def __init__(
        self,
        stream: str,
        keys: Sequence[str],
        quarantine: bool,
        widen: Callable[[Column], RecordCodec],
    ) -> None:
        self.stream = stream
        self.keys = list(keys)
        self.quarantine = quarantine
        self.widen = widen
        self.codec: RecordCodec | None = None

    def build(self, lines: list[bytes], numbers: list[int], meta: BatchMeta, upsert: bool) -> Batch:
        """Lines may share a number (the records of one BATCH message); positions tell them apart."""
        rejects: list[Reject] = []
        messages, kept, failed_at, error = self._decode(lines, numbers, rejects)
        payload, messages, kept, encode_failed_at, encode_error = self._encode(
            messages, kept, lines, numbers, meta, rejects
        )
        if encode_error is not None and (failed_at is None or encode_failed_at < failed_at):
            failed_at, error = encode_failed_at, encode_error
        if failed_at is not None:  # the batch ends before the bad line
            cut = bisect.bisect_left(kept, failed_at)
            if cut < len(messages):
                messages, kept = messages[:cut], kept[:cut]
                payload = self._encoded(messages, meta)
            rejects = [r for r in rejects if r.position < failed_at]
        codec = self.codec
        assert codec is not None
        keys: list[Any] = []
        if upsert and codec.key_attributes and messages:
            # after the bad records are out: a rejected record must not displace its key's earlier one
            last = self._last_per_key(messages)
            if len(last) != len(messages):
                messages = list(last.values())
                payload = self._encoded(messages, meta)  # every record in it has encoded once already
            keys = list(last)
        return Batch(payload, len(messages), keys, rejects, error)

    def _encoded(self, messages: list[Any], meta: BatchMeta) -> bytes:
        assert self.codec is not None
        if not messages:
            return b""
        encoded = self.codec.encode(messages, meta)
        assert isinstance(encoded, bytes)
        return encoded

    def _decode(
        self, lines: list[bytes], numbers: list[int], rejects: list[Reject]
    ) -> tuple[list[Any], list[int], int | None, InputError | None]:
        """The batch's leading valid records, their positions in `lines`, and where it failed."""
        messages: list[Any] = []
        kept: list[int] | None = None  # built only once a line is dropped
        pos, widened = 0, set()
        while pos < len(lines):
            assert self.codec is not None
            good, failure = self._decode_from(lines, pos)
            messages.extend(good)
            if kept is not None:
                kept.extend(range(pos, pos + len(good)))
            if failure is None:
                break
            index = pos + failure.index
            column = self._column_for(failure.field)
            if (
                column is not None
                and column.name not in widened
                and failure.reason is Reason.BOUND
                and failure.detail in _COLUMN_LIMITS
                and normalize(column.pg_type) in INTEGER_RANGES
            ):
                widened.add(column.name)
                self.codec = self.widen(column)  # records decoded so far keep their (same-shaped) structs
                pos = index
                continue
            replacement, error = self._lenient(lines[index], index, numbers[index], failure, rejects)
            if error is not None:
                return messages, list(range(len(messages))) if kept is None else kept, index, error
            if replacement is not None:
                messages.append(replacement)
                if kept is not None:
                    kept.append(index)
            elif kept is None:
                kept = list(range(index))
            pos = index + 1
        return messages, list(range(len(messages))) if kept is None else kept, None, None

    def _decode_from(self, lines: list[bytes], pos: int) -> tuple[list[Any], Failure | None]:
        """`codec.decode` of `lines[pos:]`; a record nested too deeply to decode is a failure of its line."""
        assert self.codec is not None
        try:
            return self.codec.decode(lines[pos:])
        except RecursionError:
            pass
        for index in range(pos, len(lines)):
            try:
                self.codec.decode([lines[index]])
            except RecursionError:
                good, failure = self.codec.decode(lines[pos:index]) if index > pos else ([], None)
                if failure is not None:
                    return good, failure
                return good, Failure(index - pos, None, Reason.TOO_DEEP)
        return self.codec.decode(lines[pos:])

    def _encode(
        self,
        messages: list[Any],
        kept: list[int],
        lines: list[bytes],
        numbers: list[int],
        meta: BatchMeta,
        rejects: list[Reject],
    ) -> tuple[bytes, list[Any], list[int], int, InputError | None]:
        """The COPY stream; a record holding a value its column cannot take gets what a decode failure gets
        (the lenient one-line decode, else the error or the quarantine)."""
        assert self.codec is not None
        while True:
            try:
                result = self.codec.encode(messages, meta) if messages else b""
            except InputError as exc:  # a per-record value found bad while encoding, without its line
                at, located = self._locate(exc, messages, kept, numbers, meta)
                return b"", messages, kept, at, located
            if isinstance(result, bytes):
                return result, messages, kept, 0, None
            position = kept[result.index]
            replacement, bad = self._lenient(lines[position], position, numbers[position], result, rejects)
            if bad is not None:
                return b"", messages, kept, position, bad
            if replacement is not None and isinstance(self._try_encode([replacement], meta), bytes):
                messages[result.index] = replacement
                continue
            if replacement is not None:
                refused = self._reject(lines[position], position, numbers[position], result, rejects)
                if refused is not None:
                    return b"", messages, kept, position, refused
            messages = messages[: result.index] + messages[result.index + 1 :]
            kept = kept[: result.index] + kept[result.index + 1 :]

    def _try_encode(self, messages: list[Any], meta: BatchMeta) -> bytes | Failure | None:
        assert self.codec is not None
        try:
            return self.codec.encode(messages, meta)
        except InputError:
            return None

    def _locate(
        self, exc: InputError, messages: list[Any], kept: list[int], numbers: list[int], meta: BatchMeta
    ) -> tuple[int, InputError]:
        """Where a record whose encoding raised is (rare: found one record at a time)."""
        stream = exc.stream or self.stream
        for message, position in zip(messages, kept, strict=True):
            if self._try_encode([message], meta) is None:
                line = numbers[position] if exc.line is None else exc.line
                return position, InputError(exc.reason, stream=stream, line=line, field=exc.field)
        position = kept[0] if kept else 0
        return position, InputError(exc.reason, stream=stream, line=numbers[position], field=exc.field)

    def _lenient(
        self, line: bytes, position: int, line_number: int, failure: Failure, rejects: list[Reject]
    ) -> tuple[Any, InputError | None]:
        """(the line decoded by the lenient path or None when quarantined, the error ending the batch)."""
        assert self.codec is not None
        try:
            return self.codec.decode_lenient(line), None
        except Refused as refused:  # a clearer reason than the batch decoder's
            failure = replace(refused.failure, index=failure.index)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            pass
        return None, self._reject(line, position, line_number, failure, rejects)

    def _reject(
        self, line: bytes, position: int, line_number: int, failure: Failure, rejects: list[Reject]
    ) -> InputError | None:
        """Quarantine the record, or return the error that stops the run there."""
        if not self.quarantine:
            return input_error(self.stream, line_number, failure, self.keys)
        raw = line.decode(errors="replace")
        rejects.append(Reject(self.stream, line_number, failure.field, failure.message, raw, position))
        return None

    def quarantine_line(self, line: bytes, error: InputError) -> Reject:
        """A line refused before decoding (a NUL character): what the quarantine keeps of it."""
        assert error.line is not None
        return Reject(self.stream, error.line, error.field, error.reason, line.decode(errors="replace"), -1)

    def _column_for(self, prop: str | None) -> Column | None:
        assert self.codec is not None
        return next((c for c in self.codec.columns if c.prop == prop), None) if prop else None

    def _last_per_key(self, messages: list[Any]) -> dict[Any, Any]:
        """Each key's last record in the batch (one INSERT … ON CONFLICT cannot take a key twice), in the
        order of each key's first record."""
        assert self.codec is not None
        key = attrgetter(*[f"record.{attr}" for attr in self.codec.key_attributes])
        return dict(zip(map(key, messages), messages, strict=True))
