"""One stream's load: buffers its RECORD lines, turns them into batches, sends them, accounts for them.

The parts have one owner each: `StreamShape` (shape.py) what a SCHEMA asks for, `StreamTable` (table.py)
the DDL, `LineBuffer` (buffer.py) the lines not yet in a batch, `BatchBuilder` (batch.py) decoding and
encoding, `BatchSender` (sender.py) each batch's transaction, `CommitPipeline` (commits.py) what is not
committed yet, which is all the STATE rule reads. Batches of one stream commit in input order, so for
upserts the last record of a key wins across batches as well as within one.
"""

from __future__ import annotations

import datetime
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from target_flx import write
from target_flx.batch import Batch, BatchBuilder
from target_flx.buffer import LineBuffer
from target_flx.codec import BatchMeta, Column, RecordCodec
from target_flx.commits import CommitPipeline, Segment
from target_flx.errors import InputError
from target_flx.history import History, LoadEnd, LoadRow
from target_flx.key_range import UNREAD, KnownKeys
from target_flx.loop import LoopThread
from target_flx.naming import table_location
from target_flx.sender import BatchSender, Layout, Sending
from target_flx.settings import LoadMethod, LoadSettings
from target_flx.shape import StreamShape
from target_flx.table import Catalog, Prepared, StreamTable

# Batches in the database at once per stream, besides the one being decoded: memory stays bounded.
MAX_IN_FLIGHT = 3


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


class StreamLoader:
    def __init__(
        self,
        stream: str,
        settings: LoadSettings,
        loop: LoopThread,
        history: History,
        sync_started_at: int,
        stages: write.Stages,
        catalog: Catalog,
    ) -> None:
        self.stream = stream
        self.settings = settings
        self.loop = loop
        self.history = history
        self.sync_started_at = sync_started_at
        self.stages = stages
        self.schema, self.table = table_location(stream, settings.default_target_schema)
        self.dest = StreamTable(loop, catalog, self.schema, self.table)
        self.shape: StreamShape | None = None  # the last SCHEMA's
        self.columns: list[Column] = []  # the table's, as the codec reads them
        self.buffer = LineBuffer(settings.batch_size_rows, settings.batch_size_bytes)
        self.builder = BatchBuilder(
            stream, [], settings.on_invalid_record == "quarantine", self._widened_codec
        )
        self.key_range = KnownKeys()  # upserts of keys beyond all the table holds skip the stage
        self.pipeline: CommitPipeline[write.BatchResult] = CommitPipeline(MAX_IN_FLIGHT)
        self.sender = BatchSender(stream, loop, history)
        self.stats = StreamStats()
        self.load: LoadRow | None = None  # written with the first batch (see History.start)
        self._sent = 0  # batches handed to the loop thread: each one's number in `stream_loads.batches`

    @property
    def method(self) -> LoadMethod:
        return self.shape.method if self.shape is not None else "append-only"

    @property
    def ref(self) -> write.LoadRef | None:
        return write.LoadRef(self.settings.control_schema, self.load.id) if self.load else None

    # -- schema -----------------------------------------------------------------------------------

    def apply_schema(self, schema: dict[str, Any], key_properties: list[str], line: int) -> None:
        """First SCHEMA creates the table; a changed one flushes, then adds and widens columns."""
        if self.shape is not None and self.shape.same(schema, key_properties):
            return
        shape = StreamShape.of(self.stream, schema, key_properties, self.settings, line)
        self.flush()
        self.wait_all()
        self._settle()  # an earlier SCHEMA's table, if no batch needed it yet
        first, self.shape = self.shape is None, shape
        if first and shape.method == "overwrite":
            self.dest.start_overwrite()
        self.dest.prepare(shape.wanted, shape.key_columns, primary_key=shape.upsert, bounded=shape.single_key)
        self.builder.keys = shape.keys
        if first:
            now = datetime.datetime.now(datetime.UTC)
            self.load = LoadRow(uuid.uuid4(), self.stream, self.schema, self.table, shape.method, now)

    @property
    def ready(self) -> bool:
        """A SCHEMA was applied: its records are taken (its table may still be being prepared)."""
        return self.shape is not None

    def _settle(self) -> None:
        """Wait for the table the last SCHEMA asked for, then build the stream's columns and codec."""

        def use(prepared: Prepared) -> None:
            assert self.shape is not None
            self.columns = self.shape.columns(prepared.columns)
            self.key_range.offer(prepared.key_range if prepared.range_known else UNREAD)
            self._rebuild_codec()

        self.dest.settle(use)

    def _rebuild_codec(self) -> None:
        """Called whenever the table's columns change (with no batch in flight)."""
        assert self.shape is not None
        self.key_range.load(self.dest, self.shape.key_column(self.columns))
        self.builder.codec = self.shape.codec(self.columns, validate=self.settings.validate_records)

    def _widened_codec(self, column: Column) -> RecordCodec:
        """A value beyond the column's integer range: the column becomes numeric, in place."""
        self.wait_all()
        actual = self.dest.ensure({column.name: "numeric"})
        self.columns = [
            Column(c.name, actual[c.name], c.prop, c.json_kind) if c.name == column.name else c
            for c in self.columns
        ]
        self._rebuild_codec()
        assert self.builder.codec is not None
        return self.builder.codec

    # -- records ----------------------------------------------------------------------------------

    def add(self, line: bytes, line_number: int) -> None:
        self.buffer.add(line, line_number)
        if self.buffer.full:
            self.flush()

    def add_many(self, lines: list[bytes], first_number: int) -> None:
        """`add` for consecutive input lines (numbered from `first_number`), a batch's worth at a time."""
        while lines:
            taken = self.buffer.extend(lines, first_number)
            if not taken:  # the byte bound falls inside: find it line by line
                for offset, line in enumerate(lines):
                    self.add(line, first_number + offset)
                return
            if self.buffer.full:
                self.flush()
            lines, first_number = lines[taken:], first_number + taken

    def refuse(self, line: bytes, error: InputError) -> None:
        """A line refused before decoding: quarantined with the next batch, or the run's error."""
        if self.settings.on_invalid_record != "quarantine":
            raise error
        self.buffer.hold(self.builder.quarantine_line(line, error))
        self.stats.quarantined += 1

    def flush(self, below: int | None = None) -> None:
        """Hand the buffered lines (those before line `below`, if given) to the loop thread as a batch.

        The lines' segment is opened before they leave the buffer and stays until their COMMIT returns;
        a bad record ends the batch there: the records before it are sent, the error is raised."""
        count = self.buffer.count_below(below)
        if count == 0:
            return
        self._settle()  # before the segment opens: a table that failed keeps the lines buffered
        numbers = self.buffer.numbers
        segment = self.pipeline.open(numbers[0], numbers[count - 1], 0)
        taken = self.buffer.take(count)
        segment.nbytes = taken.nbytes
        now = datetime.datetime.now(datetime.UTC)
        meta = BatchMeta(
            received_at=now, sequence=int(now.timestamp() * 1000), sync_started_at=self.sync_started_at
        )
        assert self.shape is not None
        batch = self.builder.build(taken.lines, taken.numbers, meta, self.shape.upsert)
        rejects = taken.rejects
        del taken  # the raw batch is the largest thing we hold
        self.stats.quarantined += len(batch.rejects)
        batch.rejects = sorted(rejects + batch.rejects, key=lambda r: r.line)
        error = batch.error
        if error is not None:
            assert error.line is not None
            batch.rejects = [r for r in batch.rejects if r.line < error.line]
            if error.line <= segment.first_line:
                raise error  # the whole segment stays, unsent: it keeps every later STATE back
            self.pipeline.split(segment, error.line)  # the tail stays, unsent
        if batch.count or batch.rejects:
            self._send(segment, batch)
        else:
            self.pipeline.discard(segment)  # nothing in it to commit
        if error is not None:
            raise error
        for done, result in self.pipeline.wait_for_room():
            self._account(done, result)

    def _send(self, segment: Segment[write.BatchResult], batch: Batch) -> None:
        self._sent += 1
        sending = Sending(
            batch,
            segment.first_line,
            segment.last_line,
            segment.nbytes,
            self._sent,
            direct=self.key_range.all_new(batch.keys),
        )
        assert self.shape is not None
        layout = Layout(
            self.schema,
            self.dest.write_table,
            tuple(c.name for c in self.columns),
            tuple(self.shape.key_columns),
            append=self.shape.append,
            stage=self.stages.for_layout([(c.name, c.pg_type) for c in self.columns]),
            ref=self.ref,
            start=self.load if self._sent == 1 else None,
        )
        segment.future = self.loop.submit(self.sender.send(sending, layout))

    def _account(self, segment: Segment[write.BatchResult], result: write.BatchResult) -> None:
        self.stats.inserted += result.inserted
        self.stats.updated += result.updated
        self.stats.unchanged += result.unchanged
        self.stats.batches += 1
        self.stats.bytes += segment.nbytes

    def poll(self) -> None:
        """Account for batches that have committed, without waiting; raises a failed batch's error."""
        for segment, result in self.pipeline.settled(wait=False):
            self._account(segment, result)

    def wait_all(self) -> None:
        """Wait for every batch sent; raises the first failed batch's error."""
        for segment, result in self.pipeline.settled(wait=True):
            self._account(segment, result)

    @property
    def busy(self) -> bool:
        return self.pipeline.in_flight > 0

    def floor(self) -> int | None:
        """The first input line whose record is not known committed (None: all committed)."""
        first = self.buffer.first
        if self.dest.overwriting and (self.pipeline.sent or first is not None or self.stats.batches):
            return 0  # nothing is visible until the swap at the end
        low = self.pipeline.floor()
        if first is not None and (low is None or first < low):
            return first
        return low

    # -- ends -------------------------------------------------------------------------------------

    def activate_version(self, version: int) -> None:
        self.flush()
        self.wait_all()
        self._settle()
        load = self.load
        self.stats.deleted += self.dest.retire(
            version,
            self.settings.hard_delete,
            self.ref,
            before=(lambda conn: self.history.start(conn, load)) if load is not None else None,
        )

    def finish(self) -> None:
        """Flush, wait, and for overwrite swap the new table in."""
        self._settle()  # a stream without records still gets its table, and its table's error
        self.flush()
        self.wait_all()
        self.dest.swap()

    def end(self, status: str, error: str | None) -> LoadEnd | None:
        """The stream's outcome for its `stream_loads` row (written for all streams at once)."""
        self.stats.status = status
        if self.load is None:
            return None
        return LoadEnd(self.load, status, error, self.stats.quarantined)
