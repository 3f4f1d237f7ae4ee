"""Prometheus metrics read from the control schema at scrape time (`/metrics` of `flx ui`, or on its own).

Every value comes from the database, not from this process's memory, so any process (the UI, `flx serve`,
`flx worker`) reports the whole deployment and a restart loses nothing. Labels are pipeline, stream,
status and severity only: bounded by what the project defines, never an execution id.

- `flx_executions_total{pipeline,status}`: finished executions (counter; pruning history lowers it, which
  Prometheus takes for a counter reset).
- `flx_executions_in_progress{pipeline,status}`: pending, running and retrying executions.
- `flx_execution_duration_seconds{pipeline,status}`: histogram of finished executions' durations.
- `flx_rows_loaded_total{pipeline,stream,operation}`, `flx_bytes_loaded_total{pipeline,stream}`: what
  target-flx wrote (operation: inserted, updated, deleted, quarantined).
- `flx_pipeline_last_success_timestamp_seconds{pipeline}`, `flx_pipeline_seconds_since_last_success`.
- `flx_alerts_firing{pipeline,severity}`.
- `flx_queue_depth`, `flx_queue_jobs{status}`, `flx_queue_workers_live`: procrastinate's tables of this
  deployment's queue (named after the control schema), when the queue is installed.
- `flx_control_schema_up`: 1 when the control schema could be read, and `flx_scrape_duration_seconds`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import Connection, Engine, func, literal_column, select, text, true

from flx_core.models import Alert, Execution, Pipeline, StreamLoad
from flx_core.statuses import ACTIVE, ExecutionStatus

log = logging.getLogger(__name__)

E = Execution.__table__
P = Pipeline.__table__
SL = StreamLoad.__table__
A = Alert.__table__

FINAL = tuple(s.value for s in ExecutionStatus if s.is_final)
SEVERITIES = ("warning", "error", "critical")
# Seconds: from a quick incremental sync to a day-long full load.
DURATION_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)
# The schema `flx.service.queue` installs procrastinate's tables in.
QUEUE_SCHEMA = "flx_queue"
QUEUE_STATUSES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")
WORKER_LIVE_SECONDS = 30.0
SCRAPE_TIMEOUT_MS = 10_000
# Scrapes this close together (several Prometheus servers, a dashboard refresh) share one database read.
CACHE_SECONDS = 5.0


def _control_schema(conn: Connection) -> str:
    translate = conn.get_execution_options().get("schema_translate_map") or {}
    return str(translate.get("flx", "flx"))


class FlxCollector(Collector):
    """A prometheus-client collector reading the control schema on every scrape."""

    def __init__(self, engine_factory: Callable[[], Engine], cache_seconds: float = CACHE_SECONDS) -> None:
        self._engine_factory = engine_factory
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._cache_seconds = cache_seconds
        self._cached: tuple[float, list[Metric]] | None = None
        self._reading = threading.Lock()

    def describe(self) -> list[Metric]:
        return []  # registering must not query the database

    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._engine_factory()
            return self._engine

    def collect(self) -> Iterator[Metric]:
        """The families of one read of the database; scrapes within `cache_seconds` share a read."""
        with self._reading:
            cached = self._cached
            if cached is None or time.monotonic() - cached[0] >= self._cache_seconds:
                cached = (time.monotonic(), list(self._read()))
                self._cached = cached
        yield from cached[1]

    def _read(self) -> Iterator[Metric]:
        started = time.perf_counter()
        up = GaugeMetricFamily("flx_control_schema_up", "1 when the control schema could be read, else 0.")
        try:
            with self.engine().connect() as conn, conn.begin():
                conn.execute(text(f"SET LOCAL statement_timeout = {SCRAPE_TIMEOUT_MS}"))
                families = list(self._families(conn))
        except Exception as exc:
            log.warning("metrics: cannot read the control schema: %s", str(exc).splitlines()[0][:300])
            up.add_metric([], 0)
            families = []
        else:
            up.add_metric([], 1)
        yield from families
        yield up
        yield GaugeMetricFamily(
            "flx_scrape_duration_seconds",
            "Seconds this scrape took to read the control schema.",
            value=time.perf_counter() - started,
        )

    def _families(self, conn: Connection) -> Iterator[Metric]:
        names = list(conn.scalars(select(P.c.name).order_by(P.c.name)))
        yield from self._executions(conn, names)
        yield self._durations(conn)
        yield from self._loads(conn)
        yield from self._last_success(conn)
        yield self._alerts(conn, names)
        yield from self._queue(conn)

    def _executions(self, conn: Connection, names: list[str]) -> Iterator[Metric]:
        total = CounterMetricFamily(
            "flx_executions", "Finished executions by pipeline and status.", labels=["pipeline", "status"]
        )
        active = GaugeMetricFamily(
            "flx_executions_in_progress",
            "Executions pending, running or retrying, by pipeline.",
            labels=["pipeline", "status"],
        )
        counts: dict[tuple[str, str], int] = {}
        for name, status, count in conn.execute(
            select(P.c.name, E.c.status, func.count())
            .select_from(E.join(P, P.c.id == E.c.pipeline_id))
            .group_by(P.c.name, E.c.status)
        ):
            counts[(name, status)] = int(count)
        for name in names:
            for status in FINAL:
                total.add_metric([name, status], counts.get((name, status), 0))
            for status in ACTIVE:
                active.add_metric([name, status], counts.get((name, status), 0))
        yield total
        yield active

    def _durations(self, conn: Connection) -> Metric:
        histogram = HistogramMetricFamily(
            "flx_execution_duration_seconds",
            "Durations of finished executions (all attempts), by pipeline and status.",
            labels=["pipeline", "status"],
        )
        duration = E.c.duration_seconds
        columns: list[Any] = [func.count().filter(duration <= bound) for bound in DURATION_BUCKETS]
        for row in conn.execute(
            select(P.c.name, E.c.status, func.count(), func.coalesce(func.sum(duration), 0), *columns)
            .select_from(E.join(P, P.c.id == E.c.pipeline_id))
            .where(duration.is_not(None), E.c.status.in_(FINAL))
            .group_by(P.c.name, E.c.status)
            .order_by(P.c.name, E.c.status)
        ):
            name, status, count, total, *cumulative = row
            buckets = [
                (floatToGoString(b), float(n)) for b, n in zip(DURATION_BUCKETS, cumulative, strict=True)
            ]
            buckets.append(("+Inf", float(count)))
            histogram.add_metric([name, status], buckets, float(total))
        return histogram

    def _loads(self, conn: Connection) -> Iterator[Metric]:
        rows = CounterMetricFamily(
            "flx_rows_loaded",
            "Rows target-flx wrote, by pipeline, stream and operation (quarantined: refused and kept aside).",
            labels=["pipeline", "stream", "operation"],
        )
        volume = CounterMetricFamily(
            "flx_bytes_loaded",
            "Bytes target-flx loaded, by pipeline and stream.",
            labels=["pipeline", "stream"],
        )
        pipeline = func.coalesce(P.c.name, literal_column("''"))
        for name, stream, inserted, updated, deleted, quarantined, size in conn.execute(
            select(
                pipeline,
                SL.c.stream,
                func.sum(SL.c.rows_inserted),
                func.sum(SL.c.rows_updated),
                func.sum(SL.c.rows_deleted),
                func.sum(SL.c.rows_quarantined),
                func.sum(SL.c.bytes),
            )
            .select_from(SL.outerjoin(E, E.c.id == SL.c.execution_id).outerjoin(P, P.c.id == E.c.pipeline_id))
            .group_by(pipeline, SL.c.stream)
            .order_by(pipeline, SL.c.stream)
        ):
            for operation, value in (
                ("inserted", inserted),
                ("updated", updated),
                ("deleted", deleted),
                ("quarantined", quarantined),
            ):
                rows.add_metric([name, stream, operation], float(value or 0))
            volume.add_metric([name, stream], float(size or 0))
        yield rows
        yield volume

    def _last_success(self, conn: Connection) -> Iterator[Metric]:
        at = GaugeMetricFamily(
            "flx_pipeline_last_success_timestamp_seconds",
            "When the pipeline's newest successful execution ended (Unix time).",
            labels=["pipeline"],
        )
        since = GaugeMetricFamily(
            "flx_pipeline_seconds_since_last_success",
            "Seconds since the pipeline's newest successful execution ended (absent if it never succeeded).",
            labels=["pipeline"],
        )
        last = (
            select(E.c.ended_at)
            .where(E.c.pipeline_id == P.c.id, E.c.status == "succeeded", E.c.ended_at.is_not(None))
            .order_by(E.c.execution_number.desc())
            .limit(1)
            .lateral("last")
        )
        now = float(conn.scalar(select(func.extract("epoch", func.now()))) or 0)
        for name, ended in conn.execute(
            select(P.c.name, func.extract("epoch", last.c.ended_at)).select_from(P.join(last, true()))
        ):
            at.add_metric([name], float(ended))
            since.add_metric([name], max(0.0, now - float(ended)))
        yield at
        yield since

    def _alerts(self, conn: Connection, names: list[str]) -> Metric:
        firing = GaugeMetricFamily(
            "flx_alerts_firing",
            "Alerts firing now, by pipeline and severity.",
            labels=["pipeline", "severity"],
        )
        counts: dict[tuple[str, str], int] = {}
        for name, severity, count in conn.execute(
            select(func.coalesce(P.c.name, literal_column("''")), A.c.severity, func.count())
            .select_from(A.outerjoin(P, P.c.id == A.c.pipeline_id))
            .where(A.c.status == "firing")
            .group_by(func.coalesce(P.c.name, literal_column("''")), A.c.severity)
        ):
            counts[(name, severity)] = int(count)
        for name in sorted({*names, *(n for n, _ in counts)}):
            for severity in sorted({*SEVERITIES, *(s for n, s in counts if n == name)}):
                firing.add_metric([name, severity], counts.get((name, severity), 0))
        return firing

    def _queue(self, conn: Connection) -> Iterator[Metric]:
        installed = conn.scalar(
            text("SELECT to_regclass(:table)"), {"table": f"{QUEUE_SCHEMA}.procrastinate_jobs"}
        )
        if installed is None:
            return
        queue = _control_schema(conn)
        counts = {
            str(status): int(count)
            for status, count in conn.execute(
                text(
                    f"SELECT status::text, count(*) FROM {QUEUE_SCHEMA}.procrastinate_jobs "
                    "WHERE queue_name = :queue GROUP BY status"
                ),
                {"queue": queue},
            )
        }
        depth = GaugeMetricFamily(
            "flx_queue_depth", "Queued executions waiting for a `flx worker` (procrastinate jobs to do)."
        )
        depth.add_metric([], counts.get("todo", 0))
        yield depth
        jobs = GaugeMetricFamily(
            "flx_queue_jobs", "This deployment's queue jobs by status.", labels=["status"]
        )
        for status in sorted({*QUEUE_STATUSES, *counts}):
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs
        live = conn.scalar(
            text(
                f"SELECT count(*) FROM {QUEUE_SCHEMA}.procrastinate_workers "
                "WHERE last_heartbeat > now() - make_interval(secs => :seconds)"
            ),
            {"seconds": WORKER_LIVE_SECONDS},
        )
        yield GaugeMetricFamily(
            "flx_queue_workers_live",
            f"Queue workers that sent a heartbeat in the last {WORKER_LIVE_SECONDS:.0f} s (all queues of the "
            "database).",
            value=int(live or 0),
        )


def registry_for(
    engine_factory: Callable[[], Engine], cache_seconds: float = CACHE_SECONDS
) -> CollectorRegistry:
    """A registry holding only flx's collector (no process or platform metrics of this interpreter)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FlxCollector(engine_factory, cache_seconds))
    return registry


def start_metrics_server(
    port: int, engine_factory: Callable[[], Engine], addr: str = "0.0.0.0"
) -> Callable[[], None]:
    """Serve `/metrics` on `addr:port` in a daemon thread; returns a function that stops it.

    `engine_factory` is called once, at the first scrape: the caller's engine (`lambda: engine`) or a new
    small one.
    """
    server, thread = start_http_server(port, addr, registry=registry_for(engine_factory))
    log.info("metrics on http://%s:%d/metrics", addr, server.server_port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
