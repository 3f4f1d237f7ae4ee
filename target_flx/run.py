"""One target-flx run: routes input lines, owns the streams, and asks the STATE gate what may go out.

STATE rule (state.py): a STATE received at input line L is written once every record before line L has
been committed. Every exit path goes through `_abort`, which commits what is safe to commit (records
before the failing line), waits for what is in flight, and releases exactly the STATE those cover.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from typing import IO, TYPE_CHECKING, Any

import msgspec

from flx_core.database import resolve
from flx_core.revision import HEAD
from flx_core.settings import DatabaseSettings
from target_flx import batch_files, copybin, mapped, messages
from target_flx.cancel import Cancelled, raise_if_cancelled
from target_flx.connection import Reconnect
from target_flx.errors import InputError, InternalError, LoadError, RecordBeforeSchema, TargetError
from target_flx.history import History, RunIdentity
from target_flx.lines import NUL_ESCAPE, iter_chunks
from target_flx.loop import LoopThread
from target_flx.mapped import MappedInput
from target_flx.naming import quote
from target_flx.nul import strip_nul
from target_flx.settings import LoadSettings
from target_flx.state import StateGate
from target_flx.stream import StreamLoader
from target_flx.summary import print_summary
from target_flx.table import Catalog
from target_flx.write import Stages

if TYPE_CHECKING:
    from singer_sdk.mapper import PluginMapper

log = logging.getLogger("target_flx")


def _upgrade_control_schema(db: DatabaseSettings) -> None:
    """The rare path (new database, new flx version): Alembic, imported only now."""
    from flx_core import migrate
    from flx_core.database import make_engine

    engine = make_engine(db, pool_size=1)
    try:
        migrate.ensure_schema(engine, db.control_schema)
    finally:
        engine.dispose()


class LoadRun:
    def __init__(self, config: dict[str, Any], mapper: PluginMapper | None = None) -> None:
        self.settings = LoadSettings.from_config(config)
        if not copybin.extension_built():
            log.warning(
                "target-flx's C encoder (target_flx._copybin) is not built, most likely because no C compiler"
                " was found at install time: loading with the Python encoder, about 3x slower"
            )
        self.mapped = MappedInput(mapper) if mapper is not None and mapped.is_configured(config) else None
        db = resolve(DatabaseSettings.from_config(config))
        connect = db.asyncpg_kwargs()
        server_settings = connect.setdefault("server_settings", {})
        if server_settings.get("application_name") in (None, "flx"):
            server_settings["application_name"] = "target-flx"
        if self.settings.lock_timeout_seconds:
            server_settings["lock_timeout"] = f"{int(self.settings.lock_timeout_seconds * 1000)}ms"
        self.loop = LoopThread(
            connect,
            pool_size=max(2, self.settings.max_parallelism),
            reconnect=Reconnect(self.settings.connection_retry_seconds),
        )
        try:
            revision = self.loop.call("reading the control schema's revision", self._schema_revision(db))
            if revision != HEAD:
                _upgrade_control_schema(db)
        except BaseException:
            self.loop.close()
            raise
        self.history = History(db.control_schema, RunIdentity.from_environment())
        self.stages = Stages()
        self.catalog = Catalog(self.loop)
        self.streams: dict[str, StreamLoader] = {}
        self.tables: dict[tuple[str, str], str] = {}  # (schema, table) → the stream loading it
        self.gate = StateGate()
        self.line = 0
        self.counts: Counter[str] = Counter()
        self.sync_started_at = int(time.time() * 1000)
        self.started = time.monotonic()

    @staticmethod
    def _schema_revision(db: DatabaseSettings) -> Any:
        table = f"{quote(db.control_schema)}.alembic_version"

        async def work(conn: Any) -> str | None:
            if await conn.fetchval("SELECT to_regclass($1)", table) is None:
                return None
            revision: str | None = await conn.fetchval(f"SELECT version_num FROM {table}")
            return revision

        return work

    # -- main loop --------------------------------------------------------------------------------

    def process(self, source: IO[Any]) -> Counter[str]:
        try:
            self._read(source)
            self._finish()
        except (TargetError, KeyboardInterrupt) as exc:
            self._abort(exc)
            raise
        except RecursionError as exc:
            self._abort(exc)
            raise InputError("input nested too deeply to read", line=self.line) from exc
        except Exception as exc:
            self._abort(exc)
            raise InternalError(
                f"unexpected {type(exc).__name__} at input line {self.line}: {exc}"
                " (set FLX_DEBUG=1 for the traceback)"
            ) from exc
        return self.counts

    def _read(self, source: IO[Any]) -> None:
        """The hot loop. A run of RECORDs of one stream (the usual input) takes the fast lane: lines that
        start with the run's prefix are counted in a tight loop and handed to their stream in one call;
        everything else goes through `_dispatch`, one line at a time."""
        prefix, fast = b"", 0
        loader: Any = None  # set together with `prefix`
        try:
            for lines, may_hold_nul in iter_chunks(source, 1.0, self._on_idle):
                raise_if_cancelled()
                i, n = 0, len(lines)
                while i < n:
                    if prefix:
                        j = i
                        while j < n and lines[j].startswith(prefix):
                            if may_hold_nul and NUL_ESCAPE in lines[j]:  # rare: `_dispatch` handles it
                                break
                            j += 1
                        if j > i:
                            first = self.line + 1
                            self.line += j - i
                            fast += j - i
                            loader.add_many(lines[i:j] if i or j < n else lines, first)
                            i = j
                            continue
                    self.line += 1
                    prefix, loader = self._dispatch(lines[i])
                    i += 1
                self._housekeeping()
        finally:
            self.counts["RECORD"] += fast

    def _dispatch(self, line: bytes) -> tuple[bytes, StreamLoader | None]:
        """Route one line; return the fast-lane prefix when it was a plain RECORD of a ready stream."""
        if prefix := messages.record_prefix(line):
            stream = messages.record_stream(prefix)
            assert stream is not None
            self._record(stream, line)
            loader = self.streams.get(stream)
            if self.mapped is None and loader is not None and loader.ready:
                return prefix, loader
        elif line.strip():
            self._message(line)
        return b"", None

    def _record(self, stream: str, line: bytes) -> None:
        if self.mapped is not None:
            if stream not in self.mapped.mapper.stream_maps:
                raise RecordBeforeSchema("RECORD before its SCHEMA", stream=stream, line=self.line)
            for alias, mapped_line in self.mapped.records(stream, line):
                self._load_record(alias, mapped_line)
            self.counts["RECORD"] += 1
            return
        self._load_record(stream, line)
        self.counts["RECORD"] += 1

    def _load_record(self, stream: str, line: bytes) -> None:
        loader = self.streams.get(stream)
        if loader is None or not loader.ready:
            raise RecordBeforeSchema("RECORD before its SCHEMA", stream=stream, line=self.line)
        if NUL_ESCAPE in line:
            try:
                sanitize = self.settings.sanitize_null_text_characters
                line = strip_nul(line, stream, self.line, sanitize=sanitize)
            except InputError as exc:
                loader.refuse(line, exc)
                return
            except msgspec.DecodeError:
                pass  # malformed: the batch decoder reports it with the others
        loader.add(line, self.line)

    def _message(self, line: bytes) -> None:
        try:
            message = messages.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise InputError(f"malformed JSON ({exc})", line=self.line) from None
        kind = message.get("type")
        if not isinstance(kind, str):
            raise InputError("a Singer message needs a 'type' (RECORD, SCHEMA, STATE, …)", line=self.line)
        self.counts[kind] += 1
        stream = message.get("stream")
        if kind == "RECORD":
            if not isinstance(stream, str) or "record" not in message:
                raise InputError("RECORD without 'stream' or 'record'", line=self.line)
            self.counts["RECORD"] -= 1
            self._record(stream, line)
        elif kind == "SCHEMA":
            self._schema(message)
        elif kind == "STATE":
            if "value" not in message:
                raise InputError("STATE without 'value'", line=self.line)
            self.gate.receive(self.line, message["value"])
            self._emit_states()
        elif kind == "ACTIVATE_VERSION":
            self._activate_version(message)
        elif kind == "BATCH":
            self._batch(message)
        else:
            log.warning("Ignoring line %d: unknown message type %r", self.line, kind)

    def _schema(self, message: dict[str, Any]) -> None:
        stream, schema = message.get("stream"), message.get("schema")
        if not isinstance(stream, str) or not isinstance(schema, dict):
            raise InputError("SCHEMA without 'stream' or 'schema' object", line=self.line)
        keys = message.get("key_properties") or []
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise InputError("key_properties must be a list of names", stream=stream, line=self.line)
        if self.mapped is None:
            self._apply_schema(stream, schema, keys, self.settings)
            return
        # Mapped schemas are inferred by singer-sdk, which only warns when a record does not match them;
        # mapped streams do the same (values are still typed for their columns).
        settings = dataclasses.replace(self.settings, validate_records=False)
        for alias, mapped_schema, mapped_keys in self.mapped.schemas(stream, schema, keys):
            self._apply_schema(alias, mapped_schema, mapped_keys, settings)

    def _apply_schema(
        self, stream: str, schema: dict[str, Any], keys: list[str], settings: LoadSettings
    ) -> None:
        loader = self.streams.get(stream)
        if loader is None:
            loader = StreamLoader(
                stream, settings, self.loop, self.history, self.sync_started_at, self.stages, self.catalog
            )
            where = (loader.schema, loader.table)
            if (other := self.tables.get(where)) is not None:
                raise InputError(
                    f"streams {other!r} and {stream!r} would both load into table {quote(where[0])}."
                    f"{quote(where[1])}; give one of them another name with a stream map (__alias__)",
                    stream=stream,
                    line=self.line,
                )
            self.tables[where] = stream
            self.streams[stream] = loader
        loader.apply_schema(schema, keys, self.line)

    def _activate_version(self, message: dict[str, Any]) -> None:
        stream, version = message.get("stream"), message.get("version")
        if not self.settings.process_activate_version_messages:
            log.warning("Ignoring ACTIVATE_VERSION for %r: process_activate_version_messages is off", stream)
            return
        loader = self.streams.get(stream) if isinstance(stream, str) else None
        if loader is None or not isinstance(version, int) or isinstance(version, bool):
            raise InputError(
                "ACTIVATE_VERSION needs a known stream and an integer version",
                line=self.line,
                stream=stream if isinstance(stream, str) else None,
            )
        loader.activate_version(version)
        self._emit_states()

    def _batch(self, message: dict[str, Any]) -> None:
        """A BATCH message: its files' records go through the same decoding as RECORD lines, all counted
        as this input line (so a STATE after it waits for all of them)."""
        stream = message.get("stream")
        if not isinstance(stream, str):
            raise InputError("BATCH without 'stream'", line=self.line)
        if self.mapped is not None:
            raise InputError(
                "BATCH messages cannot go through stream maps or flattening", stream=stream, line=self.line
            )
        loader = self.streams.get(stream)
        if loader is None or not loader.ready:
            raise RecordBeforeSchema("BATCH before its SCHEMA", stream=stream, line=self.line)
        count = 0
        for record_line in batch_files.records(message, stream, self.line):
            self._load_record(stream, record_line)
            count += 1
        self.counts["RECORD"] += count
        loader.flush()

    # -- state ------------------------------------------------------------------------------------

    def _floor(self) -> int | None:
        """The first input line whose record is not known committed, over all streams."""
        floors = [low for s in self.streams.values() if (low := s.floor()) is not None]
        return min(floors, default=None)

    def _emit_states(self) -> None:
        if not self.gate.waiting:
            return
        for loader in self.streams.values():
            loader.poll()
        self.gate.release(self._floor())

    def _housekeeping(self) -> None:
        for loader in self.streams.values():
            loader.poll()
        if self.gate.waiting and self.gate.oldest_wait() > self.settings.state_flush_seconds:
            for loader in self.streams.values():
                loader.flush()
        self._emit_states()

    def _on_idle(self) -> bool:
        """The input paused: commit what we hold so its STATE can go out. True while work is pending."""
        for loader in self.streams.values():
            loader.flush()
            loader.poll()
        self._emit_states()
        return any(s.busy for s in self.streams.values())

    # -- ends -------------------------------------------------------------------------------------

    def _finish(self) -> None:
        for loader in self.streams.values():  # every stream's last batch on its way, in parallel
            loader.flush()
        for loader in self.streams.values():
            loader.finish()
        self._emit_states()
        self._record_ends("succeeded", None)
        quarantined = sum(s.stats.quarantined for s in self.streams.values())
        if quarantined:
            log.warning(
                "%d invalid records were quarantined in the control schema's quarantine table", quarantined
            )
        print_summary(self.streams.values(), time.monotonic() - self.started)
        self.catalog.close(cancel=False)
        self.loop.close()

    def _record_ends(self, status: str, error: str | None) -> None:
        ends = [e for s in self.streams.values() if (e := s.end(status, error)) is not None]
        if ends:
            self.loop.call("recording the end of the streams", lambda conn: self.history.finish(conn, ends))

    def _abort(self, exc: BaseException) -> None:
        """Every way a run ends early. Commit what is safe (records before the failing line; everything
        received, on a cancel), wait for what is in flight, emit exactly the STATE that covers it, record
        the failure. Whatever fails here only keeps more STATE back; it never lets any out."""
        cancelled = isinstance(exc, Cancelled | KeyboardInterrupt)
        lost = isinstance(exc, LoadError) and exc.connection_lost
        if not cancelled:
            self.gate.block(_failed_line(exc, self.line))
        try:
            below = self.gate.blocked_at
            for loader in self.streams.values():
                if lost:
                    break  # the database is gone: nothing new is sent, what is in flight settles below
                try:
                    loader.flush(below)
                except TargetError as more:
                    log.debug("stream %r: not committed after the failure: %s", loader.stream, more)
                    self.gate.block(_failed_line(more, self.line))
                    below = self.gate.blocked_at
            for loader in self.streams.values():
                try:
                    loader.wait_all()
                except TargetError as more:
                    log.debug("stream %r: not committed after the failure: %s", loader.stream, more)
            self.gate.release(self._floor())
            message = str(exc) or type(exc).__name__
            self._record_ends("cancelled" if cancelled else "failed", message)
        except BaseException as cleanup:
            log.debug("cleanup after failure failed: %s", cleanup)
        finally:
            try:
                print_summary(self.streams.values(), time.monotonic() - self.started)
            finally:
                try:
                    self.catalog.close(cancel=lost or cancelled)
                finally:
                    self.loop.close()


def _failed_line(exc: BaseException, current: int) -> int:
    """The first input line the failure makes uncommittable: a bad line is; a refused batch's lines stay
    behind in its segment; otherwise the line being read."""
    if isinstance(exc, InputError) and exc.line is not None:
        return exc.line
    return current + 1 if isinstance(exc, LoadError) else current
