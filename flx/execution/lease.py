"""No overlap that survives losing the lock: a running execution's fresh heartbeat is a lease on its pipeline.

The advisory lock (`flx.execution.locks`) lives in one database session, and a database restart or failover
ends every session while the runs go on. So a second rule stands beside it: a new run of a pipeline is
refused while as many other executions of it hold a fresh lease (an active status and a heartbeat younger
than `stale_after_seconds`) as it has slots, whether or not their locks are held.

The runner renews its lease through the lock's own connection, so a renewal also proves the lock is still
held. When that connection is lost, a keeper thread reconnects and takes the same slot again; a runner
that cannot renew for `hold_seconds` (the database stays away, or its slot is taken) stops its job and
records why, and stale-run recovery never buries a run whose runner could still be inside that window.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, create_engine, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from flx.config import FlxSettings
from flx.execution.dbretry import short_reason
from flx.execution.locks import PipelineBusy, PipelineSlot
from flx_core.models import Execution, Pipeline
from flx_core.statuses import ACTIVE as _ACTIVE

log = logging.getLogger(__name__)

MARGIN_SECONDS = 2.0
# A restart takes seconds, a failover up to a minute or so: this long, at least, the job goes on.
HOLD_FLOOR_SECONDS = 15.0
CONNECT_TIMEOUT_SECONDS = 5
# libpq settings of lock connections, so a silent network cannot hang a renewal for minutes.
LOCK_CONNECT_ARGS = {
    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}


@dataclass(frozen=True)
class LeaseTiming:
    """The lease's clock, from the settings every flx process shares."""

    heartbeat_interval_seconds: float
    stale_after_seconds: float
    kill_grace_seconds: float

    @classmethod
    def from_settings(cls, settings: FlxSettings) -> LeaseTiming:
        return cls(
            settings.heartbeat_interval_seconds, settings.stale_after_seconds, settings.kill_grace_seconds
        )

    @property
    def hold_seconds(self) -> float:
        """How long a runner keeps its job going without renewing its lease.

        Its job must be dead before anyone can bury the run by the heartbeat rule, so this is bounded by
        `stale_after_seconds` less the time to stop the job and a heartbeat of slack.
        """
        room = self.stale_after_seconds - self.kill_grace_seconds - self.heartbeat_interval_seconds
        wanted = max(3 * self.heartbeat_interval_seconds, HOLD_FLOOR_SECONDS)
        return max(self.heartbeat_interval_seconds, min(wanted, room - MARGIN_SECONDS))

    @property
    def session_gone_after_seconds(self) -> float:
        """A run whose lock session ended is buried only this long after its last heartbeat: by then its
        runner, alive or not, has stopped its job (a dead runner's supervisor within the grace period)."""
        return self.hold_seconds + self.kill_grace_seconds + self.heartbeat_interval_seconds + MARGIN_SECONDS

    @property
    def runner_gone_after_seconds(self) -> float:
        """On the runner's own machine a dead runner is certain, and its leftovers are ended on the spot."""
        return 3 * self.heartbeat_interval_seconds


@dataclass(frozen=True)
class CancelRequest:
    """`flx cancel` (or the UI) asked this execution to stop: when, and who (user@host)."""

    at: datetime
    by: str


@dataclass(frozen=True)
class LiveLease:
    execution_number: int
    pid: int | None
    hostname: str | None
    age_seconds: float


def live_leases(conn: Connection, pipeline: str, fresh_within_seconds: float) -> list[LiveLease]:
    """The executions of `pipeline` that hold a lease: active, run under a lock, heartbeat fresh."""
    age = func.extract("epoch", func.now() - Execution.heartbeat_at)
    rows = conn.execute(
        select(Execution.execution_number, Execution.pid, Execution.hostname, age)
        .join(Pipeline, Pipeline.id == Execution.pipeline_id)
        .where(
            Pipeline.name == pipeline,
            Execution.status.in_(_ACTIVE),
            Execution.lock_session.is_not(None),
            Execution.heartbeat_at > func.now() - func.make_interval(0, 0, 0, 0, 0, 0, fresh_within_seconds),
        )
        .order_by(Execution.execution_number)
    ).all()
    conn.commit()
    return [LiveLease(number, pid, host, float(seconds)) for number, pid, host, seconds in rows]


class Lease:
    """One run's hold on a pipeline: a slot, then a heartbeat renewed by a keeper thread until released."""

    def __init__(self, engine: Engine, pipeline: str, slots: int, timing: LeaseTiming) -> None:
        self.pipeline = pipeline
        self.slots = slots
        self.timing = timing
        self.slot = PipelineSlot(engine, pipeline, slots)
        self._execution_id: uuid.UUID | None = None
        self._process_group: int | None = None
        self._renewed_at = time.monotonic()
        self._lost: str | None = None
        self.cancel_request: CancelRequest | None = None  # read by the runner's next tick
        self._renewing = False
        self._closing = False
        self._broken_since: float | None = None
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def session_pid(self) -> int | None:
        return self.slot.session_pid

    def acquire(self) -> None:
        """Take a free slot, unless other runs hold as many fresh leases as there are slots."""
        self.slot.acquire()
        try:
            holders = live_leases(self.slot.connection, self.pipeline, self.timing.stale_after_seconds)
        except BaseException:
            self.slot.release()
            raise
        if len(holders) >= self.slots:
            self.slot.release()
            first = holders[0]
            raise PipelineBusy(
                f"pipeline {self.pipeline!r} is already running: execution #{first.execution_number} "
                f"(runner pid {first.pid} on {first.hostname}) renewed its lease {first.age_seconds:.0f} s "
                f"ago, though its lock is free (the database restarted or it lost its connection); "
                f"not starting another"
            )

    def keep(self, execution_id: uuid.UUID) -> None:
        """Renew the lease of `execution_id` every heartbeat interval from now on."""
        self._execution_id = execution_id
        self._renewed_at = time.monotonic()
        self._renewing = True
        self._thread = threading.Thread(target=self._keep, name=f"flx-lease-{self.pipeline}", daemon=True)
        self._thread.start()

    def note_process_group(self, pgid: int) -> None:
        """Record the job's process group with the next renewal, which is now."""
        self._process_group = pgid
        self._wake.set()

    def lost(self) -> str | None:
        """Why the job must stop now (its lease is gone), or None while the lease holds."""
        if self._lost is None and self._renewing:
            silent = time.monotonic() - self._renewed_at
            if silent > self.timing.hold_seconds:
                self._lost = (
                    f"lost its lease on pipeline {self.pipeline!r}: could not renew it for {silent:.0f} s "
                    f"(the database was unreachable or the lock was taken); job stopped so that no other "
                    f"run can overlap it"
                )
        return self._lost

    def stop_renewing(self) -> None:
        """The run is ending: no more heartbeats (its final status is written next)."""
        self._renewing = False

    def release(self) -> None:
        """Stop the keeper and give the slot back (the keeper does it if it is still busy on the network)."""
        self._renewing = False
        if self._thread is None:
            self.slot.release()
            return
        self._closing = True
        self._wake.set()
        self._thread.join(timeout=self.timing.heartbeat_interval_seconds + 2 * CONNECT_TIMEOUT_SECONDS)

    def _keep(self) -> None:
        try:
            while not self._closing:
                if self._renewing and self._lost is None:
                    self._renew()
                self._wake.wait(self.timing.heartbeat_interval_seconds)
                self._wake.clear()
        finally:
            self.slot.release()

    def _renew(self) -> None:
        try:
            if self._broken_since is not None:
                if not self.slot.reacquire():
                    return
                log.warning(
                    "%s: lock re-acquired after %.1f s without it (session %s)",
                    self.pipeline,
                    time.monotonic() - self._broken_since,
                    self.slot.session_pid,
                )
                self._broken_since = None
            values: dict[str, object] = {"heartbeat_at": func.now(), "lock_session": func.pg_backend_pid()}
            if self._process_group is not None:
                values["process_group"] = self._process_group
            conn = self.slot.connection
            row = conn.execute(
                update(Execution)
                .where(Execution.id == self._execution_id, Execution.status.in_(_ACTIVE))
                .values(**values)
                .returning(Execution.cancel_requested_at, Execution.cancel_requested_by)
            ).first()
            conn.commit()
        except SQLAlchemyError as exc:
            if self._broken_since is None:
                self._broken_since = time.monotonic()
                log.warning(
                    "%s: lost the lock's database connection (%s); re-acquiring for up to %.0f s",
                    self.pipeline,
                    short_reason(exc),
                    self.timing.hold_seconds,
                )
            self.slot.discard()
            return
        if row is None:
            self._lost = (
                f"execution of pipeline {self.pipeline!r} was marked final by another process "
                f"(stale-run recovery); job stopped so that no other run can overlap it"
            )
            return
        self._renewed_at = time.monotonic()
        if row.cancel_requested_at is not None and self.cancel_request is None:
            self.cancel_request = CancelRequest(row.cancel_requested_at, row.cancel_requested_by or "someone")


class Leases:
    """Hands out leases on flx's database through an engine of their own: no pool, bounded network waits."""

    def __init__(self, engine: Engine, timing: LeaseTiming) -> None:
        self.engine = lock_engine(engine)
        self.timing = timing

    def lease(self, pipeline: str, slots: int) -> Lease:
        return Lease(self.engine, pipeline, slots, self.timing)


def lock_engine(engine: Engine) -> Engine:
    """`engine`'s database and schema mapping, one unpooled connection per lease, libpq timeouts set."""
    url = engine.url
    args = {k: v for k, v in LOCK_CONNECT_ARGS.items() if k not in url.query}
    locks = create_engine(url, poolclass=NullPool, connect_args=args)
    options = engine.get_execution_options()
    return locks.execution_options(**options) if options else locks
