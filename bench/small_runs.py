"""Small, many, often: what a job that runs every few minutes costs, end to end, per loader.

Two inputs: one record of one stream, and 200 streams of 100 records each (the shape of a frequent
incremental job over many tables). Each loader runs them `--repeat` times, in turn (A B A B …, so a drift
in the machine's speed hits both), into an existing table (the second and later runs: the usual case).
Prints the median and fastest wall time of each, and the ratio to target-flx.

    .venv/bin/python bench/small_runs.py [--repeat 7] [--url postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from anchors import ANCHORS, ensure

FLX = Path(sys.executable).with_name("target-flx")


def one_record() -> str:
    schema = {"properties": {"id": {"type": "integer"}, "v": {"type": ["null", "string"]}}}
    return "".join(
        json.dumps(m) + "\n"
        for m in (
            {"type": "SCHEMA", "stream": "one", "schema": schema, "key_properties": ["id"]},
            {"type": "RECORD", "stream": "one", "record": {"id": 1, "v": "x"}},
            {"type": "STATE", "value": {"bookmarks": {"one": 1}}},
        )
    )


def many_streams(streams: int = 200, records: int = 100) -> str:
    schema = {
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": ["null", "string"]},
            "amount": {"type": ["null", "number"]},
            "updated_at": {"type": ["null", "string"], "format": "date-time"},
        }
    }
    lines = []
    for s in range(streams):
        name = f"table_{s:03d}"
        lines.append({"type": "SCHEMA", "stream": name, "schema": schema, "key_properties": ["id"]})
        for i in range(records):
            record = {"id": i, "name": f"n{i}", "amount": i * 1.25, "updated_at": "2026-01-01T00:00:00+00:00"}
            lines.append({"type": "RECORD", "stream": name, "record": record})
        lines.append({"type": "STATE", "value": {"bookmarks": {name: records}}})
    return "".join(json.dumps(m) + "\n" for m in lines)


def config_for(url: str, schema: str) -> dict[str, Any]:
    parts = urlparse(url)
    config = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "password": parts.password or "",
        "database": parts.path.lstrip("/") or "postgres",
        "default_target_schema": schema,
    }
    return config


def timed(command: list[str], data: Path) -> float:
    with data.open("rb") as stdin:
        started = time.perf_counter()
        done = subprocess.run(command, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise SystemExit(f"{command[0]} failed ({done.returncode}): " + " / ".join(tail))
    return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--url", default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args(argv)
    reference = ANCHORS["meltanolabs"]
    ensure(reference)
    work = Path(tempfile.mkdtemp(prefix="flx-small-"))
    inputs = {"1 record": work / "one.jsonl", "200 streams x 100": work / "many.jsonl"}
    inputs["1 record"].write_text(one_record())
    inputs["200 streams x 100"].write_text(many_streams())
    loaders = {"target-flx": [str(FLX)], "MeltanoLabs 0.8.1": [str(reference.command)]}
    schema = f"bench_small_{os.getpid()}"
    commands = {}
    for name, command in loaders.items():
        path = work / f"{name.split()[0]}.json"
        path.write_text(
            json.dumps(config_for(args.url, f"{schema}_{name.split()[0].replace('-', '_').lower()}"))
        )
        commands[name] = [*command, "--config", str(path)]
    print(f"{'input':20} {'loader':20} {'median s':>9} {'min s':>7} {'vs flx':>7}")
    try:
        for label, data in inputs.items():
            times: dict[str, list[float]] = {name: [] for name in commands}
            for name in commands:  # untimed: creates the tables, as an earlier run of the job would have
                timed(commands[name], data)
            for _ in range(args.repeat):
                for name, command in commands.items():
                    times[name].append(timed(command, data))
            base = statistics.median(times["target-flx"])
            for name, values in times.items():
                median = statistics.median(values)
                print(f"{label:20} {name:20} {median:9.2f} {min(values):7.2f} {median / base:6.1f}x")
    finally:
        drop = (
            "DO $$DECLARE s text; BEGIN FOR s IN SELECT nspname FROM pg_namespace"
            f" WHERE nspname LIKE '{schema}%' LOOP EXECUTE format('DROP SCHEMA %I CASCADE', s);"
            " END LOOP; END$$"
        )
        subprocess.run(["psql", args.url, "-qc", drop], check=False, capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
