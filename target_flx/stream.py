"""One stream's load: buffers its RECORD lines, turns them into batches, sends them, accounts for them.

The parts have one owner each: `StreamTable` (table.py) the DDL, `BatchBuilder` (batch.py) decoding and
encoding, `BatchSender` (sender.py) each batch's transaction, `CommitPipeline` (commits.py) what is not
committed yet, which is all the STATE rule reads. Batches of one stream commit in input order, so for
upserts the last record of a key wins across batches as well as within one.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import datetime
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from target_flx import write
from target_flx.batch import Batch, BatchBuilder, Reject
from target_flx.codec import COMPUTED_METADATA, DELETED_AT, BatchMeta, Column, RecordCodec
from target_flx.commits import CommitPipeline, Segment
from target_flx.connection import first_line
from target_flx.errors import InputError
from target_flx.history import History, LoadEnd, LoadRow
from target_flx.key_range import UNREAD, KnownKeys
from target_flx.loop import LoopThread
from target_flx.naming import column_names, table_location
from target_flx.sender import BatchSender, Layout, Sending
from target_flx.settings import LoadMethod, LoadSettings
from target_flx.table import Catalog, Prepared, StreamTable
from target_flx.types import UnsupportedSchema, column_type

log = logging.getLogger(__name__)

# Batches in the database at once per stream, besides the one being decoded: memory stays bounded.
MAX_IN_FLIGHT = 3
# msgspec, which decodes records by property name, cannot name a field with these characters.
_UNREADABLE_NAME = re.compile(r'["\\\x00-\x1f]')


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
        self.stages = stages
        self.settings = settings
        self.loop = loop
        self.history = history
        self.sync_started_at = sync_started_at
        self.schema, self.table = table_location(stream, settings.default_target_schema)
        self.dest = StreamTable(loop, catalog, self.schema, self.table)
        self.method: LoadMethod = "append-only"
        self.keys: list[str] = []
        self.key_columns: list[str] = []
        self.columns: list[Column] = []
        self.property_schemas: dict[str, dict[str, Any]] = {}
        self.codec: RecordCodec | None = None
        self.builder = BatchBuilder(
            stream, [], settings.on_invalid_record == "quarantine", self._widened_codec
        )
        self.lines: list[bytes] = []
        self.line_numbers: list[int] = []
        self.nbytes = 0
        self.rejects: list[Reject] = []  # lines refused before buffering: they go with the next batch
        self.pipeline: CommitPipeline[write.BatchResult] = CommitPipeline(MAX_IN_FLIGHT)
        self.stats = StreamStats()
        self.load_id: uuid.UUID | None = None
        self.load: LoadRow | None = None  # written with the first batch (see History.start)
        self.sender = BatchSender(stream, loop, history)
        self._raw_schema: dict[str, Any] | None = None
        self._raw_keys: list[str] | None = None
        self._sent = 0  # batches handed to the loop thread: each one's number in `stream_loads.batches`
        self.key_range = KnownKeys()  # upserts of keys beyond all the table holds skip the stage
        self._preparing: concurrent.futures.Future[Prepared] | None = None
        self._schema_line = 0
        self._layout: list[tuple[str, str | None, str]] = []  # (column, property, JSON kind) per column

    @property
    def ref(self) -> write.LoadRef | None:
        return write.LoadRef(self.settings.control_schema, self.load_id) if self.load_id else None

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
        self._settle()  # an earlier SCHEMA's table, if no batch needed it yet
        first = self._raw_schema is None
        computed = [(n, t) for n, t in COMPUTED_METADATA if self._metadata_column(n)]
        props = self._record_properties(properties, {n for n, _ in computed}, line)
        names = column_names(list(props))
        wanted: dict[str, str] = {}
        kinds: dict[str, str] = {}
        for prop, prop_schema in props.items():
            try:
                ctype = column_type(
                    prop_schema if isinstance(prop_schema, dict) else {},
                    interpret_content_encoding=self.settings.interpret_content_encoding,
                )
            except UnsupportedSchema as exc:
                raise InputError(str(exc), stream=self.stream, line=line, field=prop) from None
            except RecursionError:
                reason = "schema nested too deeply"
                raise InputError(reason, stream=self.stream, line=line, field=prop) from None
            wanted[names[prop]] = ctype.pg_type
            kinds[names[prop]] = ctype.json_kind
        for name, pg_type in computed:
            wanted.setdefault(name, pg_type)
        self._raw_schema, self._raw_keys = schema, list(key_properties)
        self.keys = list(key_properties)
        self.key_columns = [names[k] for k in key_properties]
        self.method = self.settings.method_for(bool(self.keys))
        if first and self.method == "overwrite":
            self.dest.start_overwrite()
        upsert = self.method in ("upsert", "overwrite")
        single_key = self.key_columns[0] if upsert and len(self.key_columns) == 1 else None
        self._preparing = self.dest.prepare(
            wanted,
            self.key_columns,
            primary_key=upsert,
            bounded=(single_key, kinds[single_key]) if single_key is not None else None,
        )
        self._schema_line = line
        self.property_schemas = {p: s for p, s in props.items() if isinstance(s, dict)}
        self._layout = [(names[p], p, kinds[names[p]]) for p in props]
        self._layout += [(n, None, "metadata") for n, _ in computed]
        self.builder.keys = self.keys
        if first:
            self.load = LoadRow(
                uuid.uuid4(),
                self.stream,
                self.schema,
                self.table,
                self.method,
                datetime.datetime.now(datetime.UTC),
            )
            self.load_id = self.load.id

    @property
    def ready(self) -> bool:
        """A SCHEMA was applied: its records are taken (its table may still be being prepared)."""
        return self._raw_schema is not None

    def _settle(self) -> None:
        """Wait for the table the last SCHEMA asked for, then build the stream's columns and codec. A
        failure stays: every later call raises it again, so nothing of the stream is ever sent."""
        if self._preparing is None:
            return
        prepared = self._preparing.result()
        actual = prepared.columns
        self.columns = [Column(name, actual[name], prop, kind) for name, prop, kind in self._layout]
        self.key_range.offer(prepared.key_range if prepared.range_known else UNREAD)
        self._rebuild_codec()
        self._preparing = None  # only now: a schema the codec refuses is refused again next time

    def _record_properties(self, properties: dict[str, Any], metadata: set[str], line: int) -> dict[str, Any]:
        """The properties that become columns. A property named like a metadata column target-flx fills
        itself is left out, as singer-sdk targets do (their metadata overwrites it), with a warning."""
        for prop in properties:
            if _UNREADABLE_NAME.search(prop):
                raise InputError(
                    "property names holding a double quote, a backslash or a control character cannot be"
                    " loaded; rename the property with a stream map",
                    stream=self.stream,
                    line=line,
                    field=prop,
                )
        props = {p: s for p, s in properties.items() if p not in metadata}
        for dropped in sorted(set(properties) - set(props)):
            log.warning(
                "stream %r, line %d: property %r has the name of a metadata column target-flx fills;"
                " its values are not loaded (set add_record_metadata: false to load them)",
                self.stream,
                line,
                dropped,
            )
        if self.settings.add_record_metadata or self.settings.process_activate_version_messages:
            props.setdefault(DELETED_AT, {"type": ["null", "string"], "format": "date-time"})
        return props

    def _metadata_column(self, name: str) -> bool:
        if self.settings.add_record_metadata:
            return True
        return self.settings.process_activate_version_messages and name == "_sdc_table_version"

    def _rebuild_codec(self) -> None:
        """Called whenever the table's columns change (with no batch in flight)."""
        assert self._raw_schema is not None
        self.key_range.load(self.dest, self.method, self.key_columns, self.columns)
        try:
            self.codec = RecordCodec(
                self.stream,
                self.columns,
                self.property_schemas,
                self.keys,
                list(self._raw_schema.get("required") or []),
                validate=self.settings.validate_records,
            )
        except (TypeError, ValueError) as exc:  # a schema msgspec cannot express
            reason = f"unsupported schema: {first_line(exc)}"
            raise InputError(reason, stream=self.stream, line=self._schema_line) from None
        self.builder.codec = self.codec

    def _widened_codec(self, column: Column) -> RecordCodec:
        """A value beyond the column's integer range: the column becomes numeric, in place."""
        self.wait_all()
        actual = self.dest.ensure({column.name: "numeric"})
        self.columns = [
            Column(c.name, actual[c.name], c.prop, c.json_kind) if c.name == column.name else c
            for c in self.columns
        ]
        self._rebuild_codec()
        assert self.codec is not None
        return self.codec

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

    def refuse(self, line: bytes, error: InputError) -> None:
        """A line refused before decoding: quarantined with the next batch, or the run's error."""
        if self.settings.on_invalid_record != "quarantine":
            raise error
        assert error.line is not None
        self.rejects.append(self.builder.quarantine_line(line, error))
        self.line_numbers.append(error.line)  # holds its STATE back until the quarantine row commits
        self.lines.append(b"")
        self.stats.quarantined += 1

    def flush(self, below: int | None = None) -> None:
        """Hand the buffered lines (those before line `below`, if given) to the loop thread as a batch.

        The lines' segment is opened before they leave the buffer and stays until their COMMIT returns;
        a bad record ends the batch there: the records before it are sent, the error is raised."""
        cut = len(self.lines) if below is None else bisect.bisect_left(self.line_numbers, below)
        if cut == 0:
            return
        self._settle()  # before the segment opens: a table that failed keeps the lines buffered
        segment = self.pipeline.open(self.line_numbers[0], self.line_numbers[cut - 1], 0)
        lines, numbers = self.lines[:cut], self.line_numbers[:cut]
        if cut == len(self.lines):
            self.lines, self.line_numbers = [], []
        else:
            del self.lines[:cut], self.line_numbers[:cut]
        segment.nbytes = nbytes = sum(map(len, lines))
        self.nbytes -= nbytes
        last = numbers[-1]
        rejects = [r for r in self.rejects if r.line <= last]
        if rejects:  # quarantined lines are empty placeholders in the buffer
            self.rejects = [r for r in self.rejects if r.line > last]
            keep = [i for i, line in enumerate(lines) if line]
            lines, numbers = [lines[i] for i in keep], [numbers[i] for i in keep]
        now = datetime.datetime.now(datetime.UTC)
        meta = BatchMeta(
            received_at=now, sequence=int(now.timestamp() * 1000), sync_started_at=self.sync_started_at
        )
        batch = self.builder.build(lines, numbers, meta, self.method in ("upsert", "overwrite"))
        del lines  # the raw batch is the largest thing we hold
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
        layout = Layout(
            self.schema,
            self.dest.write_table,
            tuple(c.name for c in self.columns),
            tuple(self.key_columns),
            append=self.method == "append-only" or not self.key_columns,
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
        if self.dest.overwriting and (self.pipeline.sent or self.lines or self.stats.batches):
            return 0  # nothing is visible until the swap at the end
        low = self.pipeline.floor()
        if self.line_numbers and (low is None or self.line_numbers[0] < low):
            return self.line_numbers[0]
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
