"""`flx ui` page timings over a long history: 100,000 executions and 1,000,000 events by default.

Generates the history with `generate_series` into a throw-away control schema (created by the real
migrations), starts the real `flx ui` on it, and times every page with an HTTP client (keep-alive, one
warm-up request, then `--repeat` timed ones). Then it creates the candidate indexes in that schema,
VACUUM ANALYZEs, and times the pages again; the schema is dropped at the end (unless `--keep`).

    .venv/bin/python bench/ui/history_bench.py                       # 100k executions, both phases
    .venv/bin/python bench/ui/history_bench.py --executions 20000 --repeat 5
    .venv/bin/python bench/ui/history_bench.py --screenshots docs/ui/history   # and a browser's view

`--url` (or BENCH_DATABASE_URL) names the server and database; default
postgresql://postgres@127.0.0.1:5432/postgres. Results: a markdown table on stdout and in
bench/results/ui_history.md (+ .json).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from flx_core.database import make_engine  # noqa: E402
from flx_core.migrate import ensure_schema  # noqa: E402
from flx_core.settings import DatabaseSettings  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
RESULTS = ROOT / "bench" / "results"
BUDGET_MS = 300.0
METRICS_READ = "/metrics, database read (uncached)"

PIPELINES = [
    ("salesforce-accounts", "*/15 * * * *", "UTC", ("accounts", "contacts", "opportunities")),
    ("stripe-payments", "0 * * * *", "UTC", ("charges", "refunds")),
    ("postgres-orders", "*/30 * * * *", "Europe/Paris", ("orders", "order_items", "customers")),
    ("oracle-erp-ledger", "0 2 * * *", "Europe/Paris", ("gl_entries", "accounts", "periods")),
    ("hubspot-crm", "0 */2 * * *", "America/New_York", ("deals", "companies")),
    ("zendesk-tickets", "*/20 * * * *", "UTC", ("tickets", "users")),
    ("github-activity", "0 */6 * * *", "UTC", ("commits", "issues", "pull_requests")),
    ("shopify-store", "*/10 * * * *", "America/Los_Angeles", ("orders", "products")),
    ("mysql-inventory", "0 * * * *", "Asia/Tokyo", ("stock", "warehouses")),
    ("google-ads", "30 3 * * *", "UTC", ("campaigns", "ad_groups", "metrics")),
    ("jira-projects", "0 */4 * * *", "UTC", ("issues", "sprints")),
    ("s3-clickstream", "*/5 * * * *", "UTC", ("events",)),
    ("netsuite-finance", "0 1 * * *", "Europe/London", ("invoices", "vendors", "payments")),
    ("mongo-sessions", "*/15 * * * *", "UTC", ("sessions",)),
    ("marketo-leads", "0 */3 * * *", "UTC", ("leads", "activities")),
    ("intercom-chats", "@hourly", "UTC", ("conversations",)),
    ("workday-hr", "0 5 * * 1-5", "Europe/Berlin", ("workers", "positions")),
    ("snowflake-export", "0 0 * * *", "UTC", ("daily_kpis",)),
    ("kafka-audit", "*/10 * * * *", "UTC", ("audit_events",)),
    ("manual-backfill", None, "UTC", ("archive",)),
]

# Statuses by share of runs (cumulative thresholds on random()).
STATUS_SQL = """CASE
    WHEN r < 0.905 THEN 'succeeded' WHEN r < 0.955 THEN 'failed' WHEN r < 0.975 THEN 'failed_validation'
    WHEN r < 0.985 THEN 'timed_out' WHEN r < 0.993 THEN 'cancelled' ELSE 'skipped' END"""

# What the UI's queries want, measured by this bench: the run list walks (created_at, id) newest first,
# optionally for one pipeline; the 30-day stats and time filters take a created_at range; failures per day
# read (status, created_at, pipeline_id) from the index alone.
CANDIDATE_INDEXES = (
    "CREATE INDEX ix_executions_created_at_id ON {s}.executions (created_at, id)",
    "CREATE INDEX ix_executions_pipeline_id_created_at_id ON {s}.executions (pipeline_id, created_at, id)",
    "CREATE INDEX ix_executions_status_created_at ON {s}.executions (status, created_at) "
    "INCLUDE (pipeline_id)",
)


def generate(engine: Engine, schema: str, executions: int, events_per: int) -> dict[str, float]:
    """The history, server-side; returns seconds per table."""
    s = f'"{schema}"'
    timings: dict[str, float] = {}
    count = len(PIPELINES)

    def timed(name: str, sql: str, **params: Any) -> None:
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text("SELECT setseed(0.42)"))
            conn.execute(text(sql), params)
        timings[name] = time.perf_counter() - started

    values = ", ".join(f"(:n{i}, :s{i}, :z{i}, '{{}}'::jsonb, {i})" for i in range(count))
    params: dict[str, Any] = {}
    for i, (name, schedule, zone, _streams) in enumerate(PIPELINES):
        params |= {f"n{i}": name, f"s{i}": schedule, f"z{i}": zone}
    timed(
        "pipelines",
        f"INSERT INTO {s}.pipelines (name, schedule, timezone, config, max_concurrent_executions) "
        f"VALUES {values}",
        **params,
    )
    # Execution i belongs to pipeline (i - 1) % count, numbered (i - 1) / count + 1; one every 5 minutes
    # back from now; the newest two are still running (fresh heartbeat).
    timed(
        "executions",
        f"""
        INSERT INTO {s}.executions (pipeline_id, execution_number, trigger, status, attempt, started_at,
            ended_at, heartbeat_at, duration_seconds, exit_code, error, log_tail, run_id, hostname, pid,
            created_at, updated_at)
        SELECT p.id, (g.i - 1) / :count + 1,
            CASE WHEN g.i % 17 = 0 THEN 'manual' ELSE 'schedule' END,
            CASE WHEN g.i > :n - 2 THEN 'running' ELSE g.status END,
            CASE WHEN g.status = 'failed' AND g.i % 3 = 0 THEN 2 ELSE 1 END,
            g.at + interval '1 second',
            CASE WHEN g.i > :n - 2 THEN NULL ELSE g.at + interval '1 second' + g.d * interval '1 second' END,
            CASE WHEN g.i > :n - 2 THEN now() ELSE g.at + g.d * interval '1 second' END,
            CASE WHEN g.i > :n - 2 THEN NULL ELSE round(g.d::numeric, 3) END,
            CASE WHEN g.i > :n - 2 THEN NULL WHEN g.status = 'succeeded' THEN 0 WHEN g.status = 'failed'
                THEN 1 WHEN g.status = 'failed_validation' THEN 3 WHEN g.status = 'timed_out' THEN 124 END,
            CASE WHEN g.status IN ('failed', 'timed_out', 'failed_validation')
                THEN 'source refused the connection: ORA-12541 no listener (attempt ' || g.i || ')' END,
            'meltano run: extractor ' || p.name || E' done\\nloader target-flx: ' || (g.i % 5000) ||
                E' rows\\n',
            gen_random_uuid(), 'worker-' || (g.i % 3), 10000 + g.i % 30000,
            g.at, g.at + g.d * interval '1 second'
        FROM (
            SELECT i, now() - (:n - i) * interval '5 minutes' - interval '10 minutes' AS at,
                   (20 + ((i - 1) % :count) * 7 + random() * 90)::float8 AS d,
                   {STATUS_SQL.replace("r <", "rnd <")} AS status
            FROM (SELECT i, random() AS rnd FROM generate_series(1, :n) AS i) AS seeded
        ) AS g
        JOIN (SELECT id, name, row_number() OVER (ORDER BY max_concurrent_executions) - 1 AS k
              FROM {s}.pipelines) AS p ON p.k = (g.i - 1) % :count
        """,
        n=executions,
        count=count,
    )
    timed(
        "execution_events",
        f"""
        INSERT INTO {s}.execution_events (execution_id, seq, type, payload, at, created_at, updated_at)
        SELECT e.id, k,
            CASE WHEN k = 1 THEN 'pending' WHEN k = 2 THEN 'running' WHEN k = :per THEN e.status
                 ELSE 'stream_progress' END,
            CASE WHEN k = 1 THEN jsonb_build_object('trigger', e.trigger)
                 WHEN k IN (2, :per) THEN '{{}}'::jsonb
                 ELSE jsonb_build_object('stream', 's' || k, 'rows', k * 1000) END,
            e.created_at + k * interval '3 seconds', e.created_at, e.created_at
        FROM {s}.executions e CROSS JOIN generate_series(1, :per) AS k
        """,
        per=events_per,
    )
    flat = [(name, stream) for name, _s, _z, names in PIPELINES for stream in names]
    stream_values = ", ".join(f"(:sp{i}, :ss{i})" for i in range(len(flat)))
    stream_params: dict[str, Any] = {}
    for i, (name, stream) in enumerate(flat):
        stream_params |= {f"sp{i}": name, f"ss{i}": stream}
    timed(
        "stream_loads",
        f"""
        INSERT INTO {s}.stream_loads (execution_id, run_id, stream, schema_name, table_name, load_method,
            rows_inserted, rows_updated, rows_deleted, rows_quarantined, batches, bytes, started_at, ended_at,
            status, created_at, updated_at)
        SELECT e.id, e.run_id, st.stream, 'raw', replace(st.stream, '-', '_'), 'upsert',
            (random() * 50000)::bigint, (random() * 5000)::bigint, (random() * 50)::bigint,
            CASE WHEN random() < 0.02 THEN (random() * 20)::bigint ELSE 0 END,
            1 + (random() * 20)::int, (random() * 50000000)::bigint,
            e.started_at, e.started_at + (e.duration_seconds * 0.8) * interval '1 second',
            CASE WHEN e.status = 'succeeded' THEN 'succeeded' WHEN e.status IN ('failed', 'timed_out')
                 THEN 'failed' ELSE 'succeeded' END,
            e.created_at, e.created_at
        FROM {s}.executions e
        JOIN {s}.pipelines p ON p.id = e.pipeline_id
        JOIN (VALUES {stream_values}) AS st(pipeline, stream) ON st.pipeline = p.name
        WHERE e.status NOT IN ('skipped', 'running')
        """,
        **stream_params,
    )
    timed(
        "validation_results",
        f"""
        INSERT INTO {s}.validation_results (execution_id, check_name, kind, status, observed, expected,
            details, created_at, updated_at)
        SELECT e.id, c.name, c.kind,
            CASE WHEN e.status = 'failed_validation' AND c.n = 1 THEN 'failed' ELSE 'passed' END,
            CASE WHEN c.n = 1 THEN (1000 + e.execution_number % 97)::text ELSE '0' END,
            CASE WHEN c.n = 1 THEN '1000 ± 1 %' ELSE '0' END,
            '{{}}'::jsonb, e.ended_at, e.ended_at
        FROM {s}.executions e
        CROSS JOIN (VALUES (1, 'row count vs source', 'row_count'), (2, 'ids unique', 'unique'))
            AS c(n, name, kind)
        WHERE e.status IN ('succeeded', 'failed_validation') AND e.execution_number % 2 = 0
        """,
    )
    timed(
        "alerts",
        f"""
        INSERT INTO {s}.alerts (fingerprint, pipeline_id, check_name, severity, status, first_seen_at,
            last_sent_at, resolved_at, send_count, last_message)
        SELECT p.name || ':' || CASE WHEN g % 2 = 0 THEN 'failed' ELSE 'validation:row count vs source' END
                || ':' || g,
            p.id, CASE WHEN g % 2 = 1 THEN 'row count vs source' END,
            CASE WHEN g % 5 = 0 THEN 'critical' WHEN g % 2 = 0 THEN 'error' ELSE 'warning' END,
            CASE WHEN g <= 6 THEN 'firing' ELSE 'resolved' END,
            now() - g * interval '9 hours', now() - g * interval '9 hours' + interval '1 minute',
            CASE WHEN g <= 6 THEN NULL ELSE now() - g * interval '9 hours' + interval '2 hours' END,
            1 + g % 4,
            '[flx] ' || p.name || E' failed\\n\\npipeline: ' || p.name || E'\\nsource refused the connection'
        FROM generate_series(1, 60) AS g
        JOIN (SELECT id, name, row_number() OVER (ORDER BY name) AS k FROM {s}.pipelines) AS p
            ON p.k = 1 + g % :count
        """,
        count=count,
    )
    vacuum(engine, schema)
    return timings


def vacuum(engine: Engine, schema: str) -> None:
    """What autovacuum does to a table that has settled: statistics and the visibility map."""
    s = f'"{schema}"'
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("executions", "execution_events", "stream_loads", "validation_results", "alerts"):
            conn.execute(text(f"VACUUM ANALYZE {s}.{table}"))


def ui_command() -> list[str]:
    """`flx ui`; `python -m flx.ui` (the same command) where this flx does not list it yet."""
    from flx.cli.main import main as flx

    if "ui" in flx.commands:
        return [str(Path(sys.executable).parent / "flx"), "ui"]
    return [sys.executable, "-m", "flx.ui"]


@contextmanager
def ui_server(url: str, schema: str) -> Iterator[int]:
    """The real `flx ui` on a free port, outside any Meltano project; yields its port."""
    env = {**os.environ, "FLX_DATABASE_URL": url, "FLX_CONTROL_SCHEMA": schema}
    env.pop("MELTANO_PROJECT_ROOT", None)
    env.pop("FLX_UI_TOKEN", None)
    with tempfile.TemporaryDirectory() as cwd:
        process = subprocess.Popen(
            [*ui_command(), "--port", "0"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert process.stdout is not None
            port = None
            for line in process.stdout:
                if found := re.search(r"http://127\.0\.0\.1:(\d+)/", line):
                    port = int(found[1])
                    break
            if port is None:
                raise RuntimeError(f"flx ui did not start (exit {process.wait()})")
            yield port
        finally:
            process.terminate()
            process.wait(timeout=20)


def time_pages(port: int, pages: list[tuple[str, str]], repeat: int) -> dict[str, dict[str, float]]:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    results: dict[str, dict[str, float]] = {}
    for label, path in pages:
        samples: list[float] = []
        size = 0
        for attempt in range(repeat + 1):
            started = time.perf_counter()
            client.request("GET", path, headers={"Accept": "text/html"})
            response = client.getresponse()
            body = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise RuntimeError(f"{path}: HTTP {response.status}: {body[:300]!r}")
            size = len(body)
            if attempt:  # the first request warms caches and prepared statements
                samples.append(elapsed)
        results[label] = summary(samples) | {"kib": size / 1024}
    client.close()
    return results


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": statistics.median(ordered),
        "p90_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))],
        "max_ms": ordered[-1],
    }


def time_collector(engine: Engine, repeat: int) -> dict[str, float]:
    """What one uncached `/metrics` scrape costs: the collector's database read (the server caches 5 s)."""
    from flx.metrics import FlxCollector

    collector = FlxCollector(lambda: engine, cache_seconds=0)
    list(collector.collect())
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        list(collector.collect())
        samples.append((time.perf_counter() - started) * 1000)
    return summary(samples) | {"kib": 0.0}


def page_list(engine: Engine, schema: str, executions: int) -> list[tuple[str, str]]:
    s = f'"{schema}"'
    with engine.connect() as conn:
        busy = "postgres-orders"
        run = conn.scalar(
            text(
                f"SELECT e.id FROM {s}.executions e JOIN {s}.pipelines p ON p.id = e.pipeline_id "
                f"WHERE p.name = :p AND e.status = 'failed_validation' ORDER BY e.created_at DESC LIMIT 1"
            ),
            {"p": busy},
        )
        deep = conn.execute(
            text(
                f"SELECT created_at, id FROM {s}.executions ORDER BY created_at DESC, id DESC "
                "OFFSET :deep LIMIT 1"
            ),
            {"deep": int(executions * 0.9)},
        ).one_or_none()
        oldest = conn.scalar(text(f"SELECT min(created_at) FROM {s}.executions"))
    day = (oldest.date().toordinal() + 30) if oldest else None
    pages = [
        ("pipelines", "/"),
        ("runs", "/runs"),
        ("runs, one pipeline", "/runs?" + urlencode({"pipeline": busy})),
        ("runs, failures", "/runs?status=failures"),
        ("runs, timed out, one pipeline", "/runs?" + urlencode({"pipeline": busy, "status": "timed_out"})),
        ("runs, last 7 days", "/runs?last=7d"),
    ]
    if day is not None:
        from datetime import date

        start = date.fromordinal(day).isoformat()
        end = date.fromordinal(day + 1).isoformat()
        pages.append(("runs, one day a year ago", "/runs?" + urlencode({"from": start, "to": end})))
    if deep is not None:
        pages.append(
            (
                "runs, 90 % down (keyset)",
                "/runs?" + urlencode({"before": f"{deep[0].isoformat()}_{deep[1]}"}),
            )
        )
    if run is not None:
        pages.append(("a run", f"/runs/{run}"))
    pages += [
        ("charts, 30 days", "/charts?" + urlencode({"pipeline": busy, "days": 30})),
        ("charts, 365 days", "/charts?" + urlencode({"pipeline": busy, "days": 365})),
        ("alerts", "/alerts"),
        ("/metrics", "/metrics"),
    ]
    return pages


def screenshots(port: int, pages: list[tuple[str, str]], folder: Path) -> None:
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    wanted = {
        "pipelines": "pipelines",
        "runs": "runs",
        "a run": "run",
        "charts, 30 days": "charts",
        "alerts": "alerts",
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        for label, path in pages:
            if label in wanted:
                page.goto(f"http://127.0.0.1:{port}{path}")
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(folder / f"{wanted[label]}.png"), full_page=False)
        browser.close()


def table(phases: dict[str, dict[str, dict[str, float]]]) -> str:
    names = list(phases)
    header = "| page | " + " | ".join(f"{n}: median / p90 / max ms" for n in names) + " | KiB |"
    lines = [header, "|---|" + "---|" * len(names) + "---|"]
    for label in next(iter(phases.values())):
        cells = []
        for name in names:
            r = phases[name][label]
            mark = " ✗" if r["p90_ms"] > BUDGET_MS else ""
            cells.append(f"{r['median_ms']:.0f} / {r['p90_ms']:.0f} / {r['max_ms']:.0f}{mark}")
        kib = phases[names[-1]][label]["kib"]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {kib:.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--events-per-execution", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--phases", choices=("both", "without", "with"), default="both")
    parser.add_argument("--keep", action="store_true", help="Keep the schema (its name is printed).")
    parser.add_argument("--reuse", metavar="SCHEMA", help="Time a schema kept by an earlier --keep run.")
    parser.add_argument("--screenshots", type=Path, help="Also save browser screenshots of the pages here.")
    args = parser.parse_args()

    url = args.url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    schema = args.reuse or f"bench_ui_{uuid.uuid4().hex[:8]}"
    keep = args.keep or bool(args.reuse)
    settings = DatabaseSettings(sqlalchemy_url=url, control_schema=schema)  # type: ignore[arg-type]
    engine = make_engine(settings)
    print(
        f"control schema {schema}: {args.executions:,} executions, "
        f"{args.executions * args.events_per_execution:,} events",
        flush=True,
    )
    try:
        generated: dict[str, float] = {}
        if args.reuse:
            with engine.begin() as conn:
                for statement in CANDIDATE_INDEXES:
                    name = statement.split()[2]
                    conn.execute(text(f'DROP INDEX IF EXISTS "{schema}".{name}'))
        else:
            ensure_schema(engine, schema)
            generated = generate(engine, schema, args.executions, args.events_per_execution)
            print("generated in " + ", ".join(f"{k} {v:.1f} s" for k, v in generated.items()), flush=True)
        with engine.connect() as conn:
            counts = {
                t: conn.scalar(text(f'SELECT count(*) FROM "{schema}".{t}'))
                for t in ("executions", "execution_events", "stream_loads", "validation_results", "alerts")
            }
        print("rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()), flush=True)
        pages = page_list(engine, schema, args.executions)
        phases: dict[str, dict[str, dict[str, float]]] = {}
        with ui_server(url, schema) as port:
            if args.phases in ("both", "without"):
                phases["migrations' indexes"] = time_pages(port, pages, args.repeat)
                phases["migrations' indexes"][METRICS_READ] = time_collector(engine, args.repeat)
                print(table(phases), flush=True)
            if args.phases in ("both", "with"):
                with engine.begin() as conn:
                    for statement in CANDIDATE_INDEXES:
                        conn.execute(text(statement.format(s=f'"{schema}"')))
                vacuum(engine, schema)
                phases["+ candidate indexes"] = time_pages(port, pages, args.repeat)
                phases["+ candidate indexes"][METRICS_READ] = time_collector(engine, args.repeat)
            if args.screenshots:
                screenshots(port, pages, args.screenshots)
        report = table(phases)
        print(report)
        RESULTS.mkdir(parents=True, exist_ok=True)
        header = (
            f"# flx ui page timings\n\n{counts['executions']:,} executions, {counts['execution_events']:,} "
            f"events, {counts['stream_loads']:,} stream loads, {counts['validation_results']:,} validation "
            f"results; {args.repeat} timed requests per page after one warm-up (✗: p90 over "
            f"{BUDGET_MS:.0f} ms).\n\nCandidate indexes:\n\n"
            + "\n".join(f"    {s.format(s='flx')};" for s in CANDIDATE_INDEXES)
            + "\n\n"
        )
        (RESULTS / "ui_history.md").write_text(header + report + "\n")
        (RESULTS / "ui_history.json").write_text(
            json.dumps({"rows": counts, "generated_seconds": generated, "phases": phases}, indent=2)
        )
    finally:
        if keep:
            print(f"kept schema {schema}")
        else:
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
