"""Benchmark target-flx against the anchors on one generated Singer stream.

    .venv/bin/python bench/run.py --shape orders --records 1000000 --anchor-records 200000
    .venv/bin/python bench/run.py --setup            # only install the anchors' venvs

Each loader run gets a fresh database on the server (`--url`) and reads the cached data file on stdin. It
fails unless it exits 0 and leaves exactly `records` rows; a last STATE on stdout other than the generated
last one is noted beside the timing (all rows are there, but a resumed sync would re-read some).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import generate
import report
from anchors import setup
from database import DEFAULT_URL, Target, create_table_like_flx, fresh_database, row_count
from loaders import BASELINE_ANCHOR, BASELINE_FLX, LOADERS, Loader, psql_command, select
from measure import Measured, run_measured
from report import RunResult
from shapes import SHAPES, Shape

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"


def human(n: int) -> str:
    """1000000 → 1m, 200000 → 200k: the file-name form of a record count."""
    for size, suffix in ((1_000_000, "m"), (1_000, "k")):
        if n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)


def data_files(shape: Shape, records: int, with_csv: bool) -> tuple[Path, Path]:
    """The cached Singer file (and CSV) for a shape and record count, generated on first use."""
    stem = DATA / f"{shape.stream}_{human(records)}"
    singer, csv = stem.with_suffix(".singer"), stem.with_suffix(".csv")
    if not singer.exists() or (with_csv and not csv.exists()):
        print(f"generating {singer.name} …", file=sys.stderr)
        generate.generate(shape.stream, records, singer, csv if with_csv else None)
    return singer, csv


def last_state(stdout: Path) -> Any:
    """The value of the last STATE line a target wrote (bare value, or a wrapped STATE message)."""
    last = None
    with stdout.open("rb") as lines:
        for line in lines:
            if line.strip():
                last = line
    if last is None:
        return None
    try:
        message = json.loads(last)
    except ValueError:
        return None
    if isinstance(message, dict) and message.get("type") == "STATE":
        return message.get("value")
    return message


def _bookmark(state: Any) -> Any:
    """The replication_key_value in a STATE value (the whole value when it has another form)."""
    try:
        (bookmark,) = state["bookmarks"].values()
        return bookmark["replication_key_value"]
    except (TypeError, KeyError, ValueError, AttributeError):
        return state


def _tail(path: Path, lines: int = 5) -> str:
    text = path.read_text(errors="replace").strip().splitlines()
    return " | ".join(text[-lines:])[-600:]


def _run_target(
    loader: Loader, target: Target, singer: Path, logs: Path, timeout: float
) -> tuple[Measured, Path, Path]:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        config = Path(tmp) / "config.json"
        config.touch(mode=0o600)
        config.write_text(json.dumps(loader.full_config(target)))
        command = [*loader.command(), "--config", str(config)]
        out, err = logs.with_suffix(".out"), logs.with_suffix(".err")
        if loader.preload:
            first = run_measured(command, singer, out, err, cwd=Path(tmp), timeout=timeout)
            if first.returncode != 0:
                return first, out, err
        return run_measured(command, singer, out, err, cwd=Path(tmp), timeout=timeout), out, err


def run_one(
    loader: Loader, shape: Shape, records: int, url: str, repeat: int, timeout: float, logs_dir: Path
) -> RunResult:
    singer, csv = data_files(shape, records, with_csv=loader.config is None)
    logs = logs_dir / f"{loader.name}_{repeat}"
    logs.parent.mkdir(parents=True, exist_ok=True)
    expected_state = generate.state_value(shape, records)
    with fresh_database(url, loader.name) as target:
        state_ok: bool | None = None
        if loader.config is None:
            create_table_like_flx(target, shape)
            command, env = psql_command(target, shape.stream, shape.columns, csv)
            out, err = logs.with_suffix(".out"), logs.with_suffix(".err")
            measured = run_measured(command, None, out, err, env=env, timeout=timeout)
        else:
            measured, out, err = _run_target(loader, target, singer, logs, timeout)
            state_ok = last_state(out) == expected_state
        count = row_count(target, shape.stream)
    error = None
    if measured.timed_out:
        error = f"timed out after {timeout:.0f}s"
    elif measured.returncode != 0:
        error = f"exit {measured.returncode}: {_tail(err)}"
    elif count != records:
        error = f"row count {count} != {records}"
    warning = None
    if error is None and state_ok is False:
        # Not a failed load (every row is there), but a resumed sync would re-read records: worth a note.
        got, want = _bookmark(last_state(out)), _bookmark(expected_state)
        warning = f"last STATE bookmark is {got}, not {want}"
    return RunResult(
        loader.name,
        loader.description,
        records,
        repeat,
        measured.wall_seconds,
        measured.peak_rss_bytes,
        count,
        state_ok,
        error,
        warning,
    )


def _records_for(loader: Loader, args: argparse.Namespace) -> int:
    return int(args.anchor_records if loader.is_anchor and args.anchor_records else args.records)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=sorted(SHAPES), default="orders")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--anchor-records", type=int, default=None, help="run the anchors on this many records instead"
    )
    parser.add_argument("--only", default=None, help="comma-separated loader names or prefixes (flx, psql…)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per loader; the table shows the fastest")
    parser.add_argument("--url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per loader run")
    parser.add_argument("--setup", action="store_true", help="install the anchors' venvs, then exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.setup:
        setup()
        return 0
    shape = SHAPES[args.shape]
    loaders = select(args.only)
    name = f"{shape.stream}_{human(args.records)}"
    logs_dir = RESULTS / "logs" / name
    for records, with_csv in sorted(
        {(_records_for(loader, args), loader.config is None) for loader in loaders}, key=lambda p: not p[1]
    ):
        data_files(shape, records, with_csv)  # generate up front, so no loader's timing includes it
    runs: list[RunResult] = []
    for repeat in range(1, args.repeat + 1):
        for loader in loaders:
            records = _records_for(loader, args)
            print(
                f"[{repeat}/{args.repeat}] {loader.name}: {records:,} {shape.stream} records …",
                file=sys.stderr,
            )
            result = run_one(loader, shape, records, args.url, repeat, args.timeout, logs_dir)
            runs.append(result)
            status = "ok" if result.ok else result.error
            print(
                f"    {result.wall_seconds:.1f}s, {result.records_per_second:,.0f} rec/s, "
                f"{result.peak_rss_bytes / report.MB:,.0f} MB: {status}",
                file=sys.stderr,
            )
    stem = RESULTS / name
    runs = report.merge_previous(stem, runs, {loader.name for loader in loaders})
    order = {loader.name: i for i, loader in enumerate(LOADERS)}
    chosen = sorted(report.best(runs), key=lambda r: order.get(r.loader, len(order)))
    title = f"{shape.stream}: {args.records:,} records"
    repeats = max(r.repeat for r in runs)
    notes = [
        f"{datetime.date.today().isoformat()}, {report.environment()['cpus']} CPUs shared with other jobs: "
        "figures are noisy; records/s is the comparable figure.",
        f"best of up to {repeats} run(s) per loader; peak RSS = max over time of the sum of RSS over the "
        "loader's process tree (psutil, 50 ms).",
        "Each run: fresh database; fails unless exit 0 and row count == records; "
        "a last STATE other than the generated last STATE is noted.",
    ]
    fewer = sorted({r.records for r in chosen if r.records != args.records})
    if fewer:
        title += f" (anchors on {', '.join(f'{n:,}' for n in fewer)})"
        notes.append("Anchors ran on the first records of the same stream (a prefix): compare records/s.")
    report.print_table(title, chosen, BASELINE_ANCHOR, BASELINE_FLX)
    md = report.markdown(title, notes, chosen, BASELINE_ANCHOR, BASELINE_FLX)
    meta = {"shape": shape.stream, "records": args.records}
    json_path, md_path = report.write(stem, meta | report.environment(), runs, md)
    print(f"wrote {md_path} and {json_path}", file=sys.stderr)
    return 0 if all(r.ok for r in chosen) else 1


if __name__ == "__main__":
    raise SystemExit(main())
