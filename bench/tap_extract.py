"""tap-flx extraction speed: 1M execution_events in a scratch database, read by the real CLI.

    .venv/bin/python bench/tap_extract.py [--url postgresql://postgres@127.0.0.1:5432/postgres] [--rows N]

Creates a scratch database on the server (dropped at the end), seeds it in SQL (INSERT … SELECT
generate_series), runs `tap-flx` as a subprocess with only execution_events selected and its output sent
to /dev/null, and prints records/s and the tap's peak RSS (from wait4's rusage of that very process).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from flx_core.database import make_engine
from flx_core.migrate import ensure_schema
from flx_core.settings import DatabaseSettings, libpq_conninfo

TAP = Path(sys.executable).with_name("tap-flx")
EXECUTIONS = 1_000

SEED = """
INSERT INTO flx.pipelines (name) VALUES ('bench');
INSERT INTO flx.executions (pipeline_id, execution_number, status, started_at, ended_at, duration_seconds)
SELECT p.id, n, 'succeeded', now() - interval '1 day', now(), 86400.125
FROM flx.pipelines p, generate_series(1, {executions}) AS n;
CREATE TEMP TABLE bench_executions AS
    SELECT row_number() OVER (ORDER BY id) - 1 AS k, id FROM flx.executions;
INSERT INTO flx.execution_events (execution_id, seq, type, payload, at, created_at, updated_at)
SELECT e.id, g / {executions} + 1, 'heartbeat',
       jsonb_build_object('rows', g, 'ratio', 0.125, 'stream', 'issues'),
       ts, ts, ts
FROM generate_series(0, {rows} - 1) AS g
JOIN bench_executions e ON e.k = g % {executions}
CROSS JOIN LATERAL (SELECT now() - interval '1 day' + g * interval '1 ms' AS ts) t;
ANALYZE flx.execution_events;
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    server = make_url(args.url).set(drivername="postgresql+psycopg")
    scratch = f"flx_bench_tap_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(libpq_conninfo(server), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    try:
        url = server.set(database=scratch)
        seconds = seed(url, args.rows)
        print(f"seeded {args.rows:,} execution_events in {seconds:.1f} s")
        records, elapsed, cpu, peak_mb = extract(url)
        print(f"tap-flx: {records:,} records in {elapsed:.1f} s = {records / elapsed:,.0f} records/s")
        print(f"tap-flx CPU: {cpu:.1f} s (user+sys) = {records / cpu:,.0f} records per CPU-second")
        print(f"tap-flx peak RSS: {peak_mb:.0f} MB")
    finally:
        with psycopg.connect(libpq_conninfo(server), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))


def seed(url: URL, rows: int) -> float:
    started = time.perf_counter()
    settings = DatabaseSettings.from_config({"sqlalchemy_url": url.render_as_string(hide_password=False)})
    engine = make_engine(settings)
    ensure_schema(engine, "flx")
    engine.dispose()
    with psycopg.connect(libpq_conninfo(url)) as conn:
        conn.execute(SEED.format(rows=int(rows), executions=EXECUTIONS))
    return time.perf_counter() - started


def extract(url: URL) -> tuple[int, float, float, float]:
    """Run the tap on execution_events only: (records, wall seconds, CPU seconds, peak RSS in MB)."""
    with tempfile.TemporaryDirectory(prefix="flx-bench-tap-") as tmp:
        config, catalog, log = Path(tmp, "config.json"), Path(tmp, "catalog.json"), Path(tmp, "tap.log")
        config.write_text(json.dumps({"sqlalchemy_url": url.render_as_string(hide_password=False)}))
        discovered = json.loads(
            subprocess.run([TAP, "--config", config, "--discover"], capture_output=True, check=True).stdout
        )
        for entry in discovered["streams"]:
            for item in entry["metadata"]:
                if item["breadcrumb"] == []:
                    item["metadata"]["selected"] = entry["tap_stream_id"] == "execution_events"
        catalog.write_text(json.dumps(discovered))
        with open(os.devnull, "wb") as sink, log.open("wb") as stderr:
            started = time.perf_counter()
            proc = subprocess.Popen(
                [TAP, "--config", config, "--catalog", catalog], stdout=sink, stderr=stderr
            )
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            sys.exit(f"tap-flx failed ({proc.returncode}):\n{log.read_text()[-3000:]}")
        counts = re.findall(
            r'"metric":"record_count","value":(\d+),"tags":\{"stream":"execution_events"', log.read_text()
        )
        cpu = usage.ru_utime + usage.ru_stime
        return sum(int(c) for c in counts), elapsed, cpu, usage.ru_maxrss / 1024


if __name__ == "__main__":
    main()
