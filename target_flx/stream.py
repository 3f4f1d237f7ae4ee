"""One stream's load: its table, its buffer of RECORD lines, and its batches in flight.

Lines are buffered raw and decoded a batch at a time (see codec.py). Batches of one stream commit in
input order (a per-stream lock on the loop thread), so for upserts the last record of a key wins across
batches as well as within one.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import datetime
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import asyncpg
import msgspec

from target_flx import write
from target_flx.codec import (
    COMPUTED_METADATA,
    DELETED_AT,
    BatchMeta,
    Column,
    DecodeFailure,
    RecordCodec,
    input_error,
)
from target_flx.ddl import TableSpec, ensure_table
from target_flx.errors import InputError, LoadError
from target_flx.history import History
from target_flx.loop import LoopThread
from target_flx.naming import column_names, shorten, table_location
from target_flx.settings import LoadMethod, LoadSettings
from target_flx.types import UnsupportedSchema, column_type, normalize

log = logging.getLogger(__name__)
_OVERFLOW = (
    "<= 9223372036854775807",
    ">= -9223372036854775808",
    "<= 2147483647",
    ">= -2147483648",
    "<= 32767",
    ">= -32768",
)


@dataclass
class StreamStats:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    batches: int = 0
    bytes: int = 0
    started: float = field(default_factory=time.monotonic)
    status: str = "running"


@dataclass
class InFlight:
    future: concurrent.futures.Future[write.BatchResult]
    first_line: int
    last_line: int
    nbytes: int


class StreamLoader:
    def __init__(
        self,
        stream: str,
        settings: LoadSettings,
        loop: LoopThread,
        history: History,
        sync_started_at: int,
        quarantine: list[tuple[str | None, int, str | None, str, str]],
    ) -> None:
        self.stream = stream
        self.settings = settings
        self.loop = loop
        self.history = history
        self.sync_started_at = sync_started_at
        self.quarantine = quarantine
        self.schema, self.table = table_location(stream, settings.default_target_schema)
        self.write_table = self.table
        self.method: LoadMethod = "append-only"
        self.keys: list[str] = []
        self.key_columns: list[str] = []
        self.columns: list[Column] = []
        self.property_schemas: dict[str, dict[str, Any]] = {}
        self.codec: RecordCodec | None = None
        self.lines: list[bytes] = []
        self.line_numbers: list[int] = []
        self.nbytes = 0
        self.inflight: deque[InFlight] = deque()
        self.stats = StreamStats()
        self.load_id: uuid.UUID | None = None
        self._tail: asyncio.Future[bool] | None = None  # the last submitted batch (loop thread only)
        self._raw_schema: dict[str, Any] | None = None
        self._raw_keys: list[str] | None = None
        self._overwrite_started = False
        self.generation = 0
        # Upserts of keys beyond every key the table holds skip the stage (see `_new_keys`): the lowest and
        # highest key known to be in the table, `None` when it is empty; `_bounded` False turns this off.
        self._bounded = False
        self._key_range: tuple[Any, Any] | None = None

    # -- schema -----------------------------------------------------------------------------------

    def apply_schema(self, schema: dict[str, Any], key_properties: list[str], line: int) -> None:
        """First SCHEMA creates the table; a changed one flushes, then adds and widens columns."""
        if schema == self._raw_schema and key_properties == self._raw_keys:
            return
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            raise InputError("SCHEMA message has no 'properties' object", stream=self.stream, line=line)
        missing = [k for k in key_properties if k not in properties]
        if missing:
            raise InputError(f"key properties {missing} are not in the schema", stream=self.stream, line=line)
        self.flush()
        self.wait_all()
        first = self._raw_schema is None
        self._raw_schema, self._raw_keys = schema, list(key_properties)
        props = dict(properties)
        if self.settings.add_record_metadata or self.settings.process_activate_version_messages:
            props.setdefault(DELETED_AT, {"type": ["null", "string"], "format": "date-time"})
        names = column_names(list(props))
        wanted: dict[str, str] = {}
        kinds: dict[str, str] = {}
        for prop, prop_schema in props.items():
            try:
                ctype = column_type(prop_schema if isinstance(prop_schema, dict) else {})
            except UnsupportedSchema as exc:
                raise InputError(str(exc), stream=self.stream, line=line, field=prop) from None
            wanted[names[prop]] = ctype.pg_type
            kinds[names[prop]] = ctype.json_kind
        computed = [(n, t) for n, t in COMPUTED_METADATA if self._metadata_column(n)]
        for name, pg_type in computed:
            wanted.setdefault(name, pg_type)
        self.keys = list(key_properties)
        self.key_columns = [names[k] for k in key_properties]
        self.method = self.settings.method_for(bool(self.keys))
        if first and self.method == "overwrite":
            self.write_table = shorten(f"{self.table}__flx_new")
            self.loop.run(self._drop(self.write_table))
            self._overwrite_started = True
        spec = TableSpec(
            self.schema,
            self.write_table,
            wanted,
            self.key_columns,
            primary_key=self.method in ("upsert", "overwrite"),
        )
        actual = self.loop.run(self._ensure(spec))
        self.property_schemas = {p: s for p, s in props.items() if isinstance(s, dict)}
        self.columns = [Column(names[p], actual[names[p]], p, kinds[names[p]]) for p in props]
        self.columns += [Column(n, actual[n], None, "metadata") for n, _ in computed]
        self._rebuild_codec()
        if first:
            self.load_id = self.loop.run(self._start_history())

    def _metadata_column(self, name: str) -> bool:
        if self.settings.add_record_metadata:
            return True
        return self.settings.process_activate_version_messages and name == "_sdc_table_version"

    def _rebuild_codec(self) -> None:
        """Called whenever the table's columns change (with no batch in flight)."""
        assert self._raw_schema is not None
        self.generation += 1  # a new staging table for the new layout
        self._load_key_range()
        self.codec = RecordCodec(
            self.stream,
            self.columns,
            self.property_schemas,
            self.keys,
            list(self._raw_schema.get("required") or []),
            validate=self.settings.validate_records,
        )

    def _load_key_range(self) -> None:
        """For one integer or date key (compared alike by Python and PostgreSQL), its lowest and highest
        value in the table: two reads of the key's unique index."""
        key = [c for c in self.columns if c.prop is not None and c.name in self.key_columns]
        self._bounded = (
            self.method in ("upsert", "overwrite")
            and len(key) == 1
            and (key[0].json_kind, normalize(key[0].pg_type))
            in {("integer", "smallint"), ("integer", "integer"), ("integer", "bigint"), ("date", "date")}
        )
        if self._bounded:
            self._key_range = self.loop.run(self._read_key_range(key[0].name))

    async def _read_key_range(self, column: str) -> tuple[Any, Any] | None:
        name, table = write.quote(column), write.qualified(self.schema, self.write_table)
        async with self.loop.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT (SELECT {name} FROM {table} ORDER BY {name} LIMIT 1) AS lo,"
                f" (SELECT {name} FROM {table} ORDER BY {name} DESC LIMIT 1) AS hi"
            )
        return None if row is None or row["lo"] is None else (row["lo"], row["hi"])

    def _new_keys(self, keys: list[Any]) -> bool:
        """Whether every key of the batch lies outside the range of keys already in the table (or sent
        before in this run): then no row can conflict and the batch is COPYed straight in, as an append.
        Ever-growing ids, the usual shape of a backfill or an incremental load, take this path."""
        if not self._bounded or not keys:
            return False
        lo, hi = min(keys), max(keys)
        known = self._key_range
        self._key_range = (lo, hi) if known is None else (min(lo, known[0]), max(hi, known[1]))
        return known is None or lo > known[1] or hi < known[0]

    async def _ensure(self, spec: TableSpec) -> dict[str, str]:
        async with self.loop.pool.acquire() as conn:
            return await ensure_table(conn, spec)

    async def _drop(self, table: str) -> None:
        async with self.loop.pool.acquire() as conn:
            await conn.execute(f"DROP TABLE IF EXISTS {write.qualified(self.schema, table)}")

    async def _start_history(self) -> uuid.UUID:
        async with self.loop.pool.acquire() as conn:
            return await self.history.start(conn, self.stream, self.schema, self.table, self.method)

    def widen_to_numeric(self, column: Column) -> None:
        """A value beyond the column's integer range: the column becomes numeric, in place."""
        self.wait_all()
        spec = TableSpec(self.schema, self.write_table, {column.name: "numeric"})
        actual = self.loop.run(self._ensure(spec))
        self.columns = [
            Column(c.name, actual[c.name], c.prop, c.json_kind) if c.name == column.name else c
            for c in self.columns
        ]
        self._rebuild_codec()

    # -- records ----------------------------------------------------------------------------------

    def add(self, line: bytes, line_number: int) -> None:
        self.lines.append(line)
        self.line_numbers.append(line_number)
        self.nbytes += len(line)
        if len(self.lines) >= self.settings.batch_size_rows or self.nbytes >= self.settings.batch_size_bytes:
            self.flush()

    def add_many(self, lines: list[bytes], first_number: int) -> None:
        """`add` for consecutive input lines (numbered from `first_number`), a batch's worth at a time."""
        limit_rows, limit_bytes = self.settings.batch_size_rows, self.settings.batch_size_bytes
        while lines:
            take = lines[: max(1, limit_rows - len(self.lines))]
            size = sum(map(len, take))
            if self.nbytes + size >= limit_bytes:  # the byte bound falls inside: find it line by line
                for offset, line in enumerate(lines):
                    self.add(line, first_number + offset)
                return
            self.lines += take
            self.line_numbers += range(first_number, first_number + len(take))
            self.nbytes += size
            if len(self.lines) >= limit_rows:
                self.flush()
            lines, first_number = lines[len(take) :], first_number + len(take)

    def flush(self) -> None:
        """Decode and encode the buffered lines, and hand the batch to the loop thread."""
        if not self.lines:
            return
        lines, numbers, nbytes = self.lines, self.line_numbers, self.nbytes
        self.lines, self.line_numbers, self.nbytes = [], [], 0
        messages, kept = self._decode(lines, numbers)
        now = datetime.datetime.now(datetime.UTC)
        meta = BatchMeta(
            received_at=now, sequence=int(now.timestamp() * 1000), sync_started_at=self.sync_started_at
        )
        payload, messages, kept = self._encode(messages, kept, lines, numbers, meta)
        assert self.codec is not None
        direct = False
        if self.method in ("upsert", "overwrite") and self.key_columns and messages:
            # after the bad records are out: a rejected record must not displace its key's earlier one
            last = self._last_per_key(messages)
            if len(last) != len(messages):
                messages = list(last.values())
                encoded = self.codec.encode(messages, meta)  # every record in it has encoded once already
                assert isinstance(encoded, bytes)
                payload = encoded
            direct = self._new_keys(list(last))
        count = len(messages)
        del lines, messages  # the raw batch and its records are the largest things we hold
        if count:
            future = self.loop.submit(self._write(payload, count, nbytes, numbers[0], numbers[-1], direct))
            self.inflight.append(InFlight(future, numbers[0], numbers[-1], nbytes))
        # three batches in the database, one being decoded: memory stays bounded
        while len(self.inflight) > 3:
            self._settle(self.inflight[0].future.result)

    def _encode(
        self, messages: list[Any], kept: list[int], lines: list[bytes], numbers: list[int], meta: BatchMeta
    ) -> tuple[bytes, list[Any], list[int]]:
        """The COPY stream; a record holding a value its column cannot take gets what a decode failure gets
        (the lenient one-line decode, else the error or the quarantine)."""
        assert self.codec is not None
        while True:
            result = self.codec.encode(messages, meta)
            if isinstance(result, bytes):
                return result, messages, kept
            line_number = kept[result.index]
            line = lines[bisect.bisect_left(numbers, line_number)]
            replacement = self._lenient(line, line_number, result)
            if replacement is not None and isinstance(self.codec.encode([replacement], meta), bytes):
                messages[result.index] = replacement
                continue
            if replacement is not None:
                self._reject(line, line_number, result)
            messages = messages[: result.index] + messages[result.index + 1 :]
            kept = kept[: result.index] + kept[result.index + 1 :]

    def _decode(self, lines: list[bytes], numbers: list[int]) -> tuple[list[Any], list[int]]:
        """The batch's records and their line numbers (`numbers` itself when every line was kept)."""
        assert self.codec is not None
        messages: list[Any] = []
        kept: list[int] | None = None  # built only once a line is dropped
        pos, widened = 0, set()
        while pos < len(lines):
            good, failure = self.codec.decode(lines[pos:])
            messages.extend(good)
            if kept is not None:
                kept.extend(numbers[pos : pos + len(good)])
            if failure is None:
                break
            index = pos + failure.index
            column = self._column_for(failure.field)
            if (
                column is not None
                and column.name not in widened
                and any(b in failure.message for b in _OVERFLOW)
                and normalize(column.pg_type) in ("smallint", "integer", "bigint")
            ):
                widened.add(column.name)
                self.widen_to_numeric(column)
                pos = index
                continue
            replacement = self._lenient(lines[index], numbers[index], failure)
            if replacement is not None:
                messages.append(replacement)
                if kept is not None:
                    kept.append(numbers[index])
            elif kept is None:
                kept = numbers[:index]
            pos = index + 1
        return messages, numbers if kept is None else kept

    def _lenient(self, line: bytes, line_number: int, failure: DecodeFailure) -> Any:
        """The line decoded by the lenient path, or None when it is quarantined; raises the input error."""
        assert self.codec is not None
        try:
            return self.codec.decode_lenient(line)
        except (msgspec.ValidationError, msgspec.DecodeError):
            self._reject(line, line_number, failure)
            return None

    def _reject(self, line: bytes, line_number: int, failure: DecodeFailure) -> None:
        error = input_error(self.stream, line_number, failure, self.keys)
        if self.settings.on_invalid_record != "quarantine":
            raise error from None
        self.quarantine.append(
            (self.stream, line_number, failure.field, failure.message, line.decode(errors="replace"))
        )
        self.stats.quarantined += 1

    def _column_for(self, prop: str | None) -> Column | None:
        return next((c for c in self.columns if c.prop == prop), None) if prop else None

    def _last_per_key(self, messages: list[Any]) -> dict[Any, Any]:
        """Each key's last record in the batch (one INSERT … ON CONFLICT cannot take a key twice), in the
        order of each key's first record."""
        assert self.codec is not None
        key = attrgetter(*[f"record.{attr}" for attr in self.codec.key_attributes])
        return dict(zip(map(key, messages), messages, strict=True))

    async def _write(
        self, payload: bytes, count: int, nbytes: int, first: int, last: int, direct: bool = False
    ) -> write.BatchResult:
        """COPY concurrently with the previous batch, but merge and commit strictly after it.

        Batches start in submission order (the loop runs them FIFO), so `_tail` chains each batch to the one
        before: its COPY overlaps the previous batch's merge, and it commits only if that one committed.
        """
        previous, mine = self._tail, asyncio.get_running_loop().create_future()
        self._tail = mine
        columns = [c.name for c in self.columns]
        ref = write.LoadRef(self.settings.control_schema, self.load_id) if self.load_id else None
        committed = False
        try:
            async with self.loop.pool.acquire() as conn, conn.transaction():
                if direct:
                    try:
                        async with conn.transaction():  # a savepoint: a conflict falls back to the merge
                            result = await write.append(conn, self.schema, self.write_table, columns, payload)
                    except asyncpg.UniqueViolationError:  # another writer got there first
                        log.info(
                            "stream %r, lines %d-%d: keys already present, merging", self.stream, first, last
                        )
                        direct = False
                if self.method == "append-only" or not self.key_columns:
                    result = await write.append(conn, self.schema, self.write_table, columns, payload)
                    await _after(previous, first)
                elif direct:
                    await _after(previous, first)
                else:
                    generation = self.generation
                    await write.stage(conn, self.schema, self.write_table, columns, payload, generation)
                    await _after(previous, first)
                    result = await write.merge(
                        conn, self.schema, self.write_table, columns, self.key_columns, count, generation
                    )
                await write.account(conn, ref, result, nbytes)
            committed = True
        except LoadError:
            raise
        except Exception as exc:
            raise LoadError(f"stream {self.stream!r}, lines {first}-{last}: {_db_message(exc)}") from exc
        finally:
            mine.set_result(committed)
        return result

    def _settle(self, wait: Any) -> None:
        wait()
        done = self.inflight.popleft()
        result = done.future.result()
        self.stats.inserted += result.inserted
        self.stats.updated += result.updated
        self.stats.unchanged += result.unchanged
        self.stats.batches += 1
        self.stats.bytes += done.nbytes

    def poll(self) -> None:
        """Account for batches that have committed, without waiting."""
        while self.inflight and self.inflight[0].future.done():
            self._settle(lambda: None)

    def wait_all(self) -> None:
        while self.inflight:
            self._settle(self.inflight[0].future.result)

    def oldest_uncommitted_line(self) -> int | None:
        """The first input line whose record is not committed yet (None: all committed)."""
        if (
            self.method == "overwrite"
            and self._overwrite_started
            and (self.inflight or self.lines or self.stats.batches)
        ):
            return 0  # nothing is visible until the swap at the end
        if self.inflight:
            return self.inflight[0].first_line
        if self.line_numbers:
            return self.line_numbers[0]
        return None

    # -- ends -------------------------------------------------------------------------------------

    def activate_version(self, version: int) -> None:
        self.flush()
        self.wait_all()
        hard = self.settings.hard_delete
        self.stats.deleted += self.loop.run(self._retire(version, hard))

    async def _retire(self, version: int, hard: bool) -> int:
        async with self.loop.pool.acquire() as conn, conn.transaction():
            deleted = await write.retire_versions(
                conn, self.schema, self.write_table, version, hard_delete=hard
            )
            ref = write.LoadRef(self.settings.control_schema, self.load_id) if self.load_id else None
            await write.account(conn, ref, write.BatchResult(deleted=deleted), 0)
            return deleted

    def finish(self) -> None:
        """Flush, wait, and for overwrite swap the new table in (one transaction: readers see old or new)."""
        self.flush()
        self.wait_all()
        if self._overwrite_started:
            self.loop.run(self._swap())
            self._overwrite_started = False

    async def _swap(self) -> None:
        target = write.qualified(self.schema, self.table)
        async with self.loop.pool.acquire() as conn, conn.transaction():
            await conn.execute(f"DROP TABLE IF EXISTS {target}")
            staging = write.qualified(self.schema, self.write_table)
            await conn.execute(f"ALTER TABLE {staging} RENAME TO {write.quote(self.table)}")
        self.write_table = self.table

    def record_end(self, status: str, error: str | None) -> None:
        self.stats.status = status
        if self.load_id is None:
            return
        self.loop.run(self._end_history(status, error))

    async def _end_history(self, status: str, error: str | None) -> None:
        assert self.load_id is not None
        async with self.loop.pool.acquire() as conn:
            await self.history.finish(conn, self.load_id, status, error, self.stats.quarantined)


async def _after(previous: asyncio.Future[bool] | None, first: int) -> None:
    if previous is not None and not await previous:
        raise LoadError(f"batch from line {first} not committed: an earlier batch of its stream failed")


def _db_message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text
