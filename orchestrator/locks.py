"""No overlap: a pipeline's running executions each hold one of its PostgreSQL advisory-lock slots.

Session-level advisory locks die with the connection, so a run whose process is killed frees its slot at
once, on any machine sharing the database — no lock files, no cleanup job.
"""

from __future__ import annotations

import zlib
from types import TracebackType

from sqlalchemy import Connection, Engine, text

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

    def release(self) -> None:
        if self._conn is not None and self.slot is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key(self.slot)})
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn, self.slot = None, None

    def __enter__(self) -> PipelineSlot:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
