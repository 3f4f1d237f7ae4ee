"""Each execution's complete output, kept in the control schema, readable from any shell on any machine.

The runner hands every line of the job's output (and its own markers: attempt started, outcome) to a
`LogWriter`; a thread of its own writes what arrived as one zlib-compressed chunk a second, so
`flx logs --follow` and the UI show a run live, and merges an attempt's chunks into one when it ends (one
chunk compresses far better than many small ones). Writing never blocks the job: when the database is away,
lines wait in memory (up to `MAX_PENDING_BYTES`, then the oldest are dropped and the log says how many).

Lines are numbered from 0 per execution; a chunk covers `first_line` … `first_line + line_count - 1`, so a
reader that has printed up to line N asks for the chunks ending after N, merged or not.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from flx.execution.dbretry import short_reason
from flx.execution.logchunks import MARKER, pack, unpack
from flx_core.models import ExecutionLog

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
CHUNK_BYTES = 1 << 20  # a live chunk's uncompressed size at most
MAX_PENDING_BYTES = 64 << 20
LIVE_LEVEL = 1  # fast while the job runs; the merged chunk is compressed hard once
MERGED_LEVEL = 9
CLOSE_WAIT_SECONDS = 10.0  # for the last lines when the run ends with the database away


class LogWriter:
    """Collects one execution's output lines and writes them in chunks; `line()` is safe from any thread."""

    def __init__(self, engine: Engine, execution_id: uuid.UUID) -> None:
        self.engine = engine
        self.execution_id = execution_id
        self.attempt = 1
        self._pending: deque[str] = deque()
        self._pending_bytes = 0
        self._dropped = 0
        self._next_line = 0  # number of the first pending line
        self._lock = threading.Lock()  # the pending lines
        self._writing = threading.Lock()  # one writer at a time, so chunks are written in line order
        self._wake = threading.Event()
        self._closing = False
        self._complaining = False
        self._thread = threading.Thread(target=self._keep, name="flx-log-store", daemon=True)
        self._thread.start()

    def line(self, text: str) -> None:
        with self._lock:
            size = len(text) + 1
            self._pending.append(text)
            self._pending_bytes += size
            while self._pending_bytes > MAX_PENDING_BYTES and len(self._pending) > 1:
                self._pending_bytes -= len(self._pending.popleft()) + 1
                self._dropped += 1

    def marker(self, text: str) -> None:
        """A line of flx's own among the job's (an attempt starts, the outcome)."""
        self.line(MARKER + text)

    def start_attempt(self, attempt: int, what: str) -> None:
        """Lines from now on belong to `attempt`; the earlier attempt's chunks are merged."""
        with self._writing:
            self._write_pending()
            self._merge(self.attempt)
            self.attempt = attempt
        self.marker(what)

    def close(self) -> None:
        """Write what is left and merge the last attempt's chunks (bounded when the database is away)."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout=30)
        deadline = time.monotonic() + CLOSE_WAIT_SECONDS
        with self._writing:
            while not self._write_pending() and time.monotonic() < deadline:
                time.sleep(1.0)
            self._merge(self.attempt)

    def _keep(self) -> None:
        while not self._closing:
            self._wake.wait(FLUSH_SECONDS)
            self._flush()

    def _take(self) -> tuple[list[str], int] | None:
        with self._lock:
            if self._dropped:
                note = (
                    f"{MARKER}{self._dropped:,} lines of output were not kept: the database was unreachable "
                    f"and they exceeded {MAX_PENDING_BYTES >> 20} MB"
                )
                self._pending.appendleft(note)
                self._pending_bytes += len(note) + 1
                self._dropped = 0
            if not self._pending:
                return None
            taken: list[str] = []
            size = 0
            while self._pending and (not taken or size + len(self._pending[0]) < CHUNK_BYTES):
                text = self._pending.popleft()
                size += len(text) + 1
                taken.append(text)
            self._pending_bytes -= size
            first = self._next_line
            self._next_line += len(taken)
            return taken, first

    def _give_back(self, lines: list[str], first: int) -> None:
        with self._lock:
            self._pending.extendleft(reversed(lines))
            self._pending_bytes += sum(len(text) + 1 for text in lines)
            self._next_line = first

    def _flush(self) -> None:
        with self._writing:
            self._write_pending()

    def _write_pending(self) -> bool:
        """Write every pending line; False when the database refused (they stay pending)."""
        while (taken := self._take()) is not None:
            lines, first = taken
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(ExecutionLog).values(
                            execution_id=self.execution_id,
                            attempt=self.attempt,
                            first_line=first,
                            line_count=len(lines),
                            raw_bytes=sum(len(text) + 1 for text in lines),
                            data=pack(lines, LIVE_LEVEL),
                        )
                    )
            except SQLAlchemyError as exc:
                self._give_back(lines, first)
                if not self._complaining:
                    self._complaining = True
                    log.warning("could not store the run's log (%s); keeping it in memory", short_reason(exc))
                return False
            if self._complaining:
                self._complaining = False
                log.info("storing the run's log again")
        return True

    def _merge(self, attempt: int) -> None:
        """One chunk for the attempt instead of one a second: smaller, and one row to read."""
        where = (ExecutionLog.execution_id == self.execution_id) & (ExecutionLog.attempt == attempt)
        try:
            with self.engine.begin() as conn:
                rows = conn.execute(
                    select(ExecutionLog.first_line, ExecutionLog.line_count, ExecutionLog.data)
                    .where(where)
                    .order_by(ExecutionLog.first_line)
                    .with_for_update()
                ).all()
                if len(rows) < 2:
                    return
                lines: list[str] = []
                for _first, count, data in rows:
                    lines.extend(unpack(data, count))
                conn.execute(delete(ExecutionLog).where(where))
                conn.execute(
                    insert(ExecutionLog).values(
                        execution_id=self.execution_id,
                        attempt=attempt,
                        first_line=rows[0][0],
                        line_count=len(lines),
                        raw_bytes=sum(len(text) + 1 for text in lines),
                        data=pack(lines, MERGED_LEVEL),
                    )
                )
        except SQLAlchemyError as exc:
            log.warning("could not merge the run's log chunks (%s); they stay as they are", short_reason(exc))


def expire(engine: Engine, retention_days: float) -> int:
    """Delete log chunks older than `retention_days` (0 keeps them forever); how many went."""
    if retention_days <= 0:
        return 0
    from sqlalchemy import func, text

    cutoff = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, retention_days * 86400)
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL lock_timeout = '2s'"))
        return int(conn.execute(delete(ExecutionLog).where(ExecutionLog.created_at < cutoff)).rowcount)


class Expiry:
    """Log expiry at most once every `every_seconds`: runs start often, chunks age slowly. One per process
    (`EXPIRY`), shared by every runner `flx serve` and `flx worker` make."""

    def __init__(self, every_seconds: float = 3600.0) -> None:
        self.every_seconds = every_seconds
        self._last: float | None = None

    def maybe(self, engine: Engine, retention_days: float) -> None:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.every_seconds:
            return
        self._last = now
        try:
            gone = expire(engine, retention_days)
        except SQLAlchemyError as exc:
            log.warning("could not expire old run logs: %s", short_reason(exc))
            return
        if gone:
            log.info("deleted %d log chunks older than %g days", gone, retention_days)


EXPIRY = Expiry()
