"""No overlap: a pipeline's running executions each hold one of its PostgreSQL advisory-lock slots.

Session-level advisory locks die with the connection, so a run whose process is killed frees its slot at
once, on any machine sharing the database — no lock files, no cleanup job. They die with a database
restart too, though the run goes on: `flx.execution.lease` re-acquires the same slot on a new connection,
and a run's fresh heartbeat keeps others out meanwhile.
"""

from __future__ import annotations

import contextlib
import zlib
from types import TracebackType

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

_NAMESPACE = 0x464C58  # "FLX": keeps our keys apart from other applications' advisory locks


class PipelineBusy(RuntimeError):
    """Every slot of the pipeline is taken: as many executions run as `max_concurrent_executions` allows."""


class PipelineSlot:
    """Holds one slot of a pipeline for the life of a run (a context manager)."""

    def __init__(self, engine: Engine, pipeline: str, slots: int) -> None:
        self.engine = engine
        self.pipeline = pipeline
        self.slots = slots
        self.slot: int | None = None
        self.session_pid: int | None = None
        self._conn: Connection | None = None

    def _key(self, slot: int) -> int:
        """One bigint per (pipeline, slot); crc32 is stable across processes, unlike hash()."""
        return (_NAMESPACE << 40) | (zlib.crc32(self.pipeline.encode()) << 8) | (slot & 0xFF)

    def acquire(self) -> None:
        conn = self.engine.connect()
        try:
            for slot in range(self.slots):
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key(slot)}).scalar()
                conn.commit()
                if got:
                    self.slot, self._conn = slot, conn
                    self.session_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
                    conn.commit()
                    return
        except BaseException:
            conn.close()
            raise
        conn.close()
        what = "an execution is" if self.slots == 1 else f"{self.slots} executions are"
        raise PipelineBusy(
            f"pipeline {self.pipeline!r} is already running ({what} in progress, "
            f"max_concurrent_executions={self.slots}); not starting another"
        )

    @property
    def connection(self) -> Connection:
        """The session holding the lock: statements that must prove the lock is still ours run on it."""
        assert self._conn is not None, "slot not held"
        return self._conn

    def reacquire(self) -> bool:
        """Take our slot again on a new connection, after the old one was lost; False if it is taken.

        A connection lost on our side (a reset, a proxy) may leave its session alive on the server, still
        holding the lock, until the server notices: that session is ours, so it is ended first.
        """
        assert self.slot is not None, "slot never acquired"
        old_session = self.session_pid
        self.discard()
        key = self._key(self.slot)
        conn = self.engine.connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            if not got and old_session is not None and self._holder(conn, key) == old_session:
                conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": old_session})
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            session_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn, self.session_pid = conn, session_pid
        return True

    @staticmethod
    def _holder(conn: Connection, key: int) -> int | None:
        """The backend holding advisory lock `key` in this database (a bigint key is classid:objid, 1)."""
        return conn.execute(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
                " AND classid::bigint = :hi AND objid::bigint = :lo"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
        ).scalar()

    def discard(self) -> None:
        """Drop a connection that failed; its session (and the lock) is gone or going with it."""
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.invalidate()
                self._conn.close()
            self._conn = None

    def release(self) -> None:
        """Unlock and close; if the connection fails now, its session's end releases the lock as well."""
        if self._conn is not None and self.slot is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key(self.slot)})
                self._conn.commit()
            except SQLAlchemyError:
                self.discard()
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()
        self._conn, self.slot = None, None

    def __enter__(self) -> PipelineSlot:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
