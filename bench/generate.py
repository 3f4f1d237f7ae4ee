"""Write a deterministic Singer stream (and optionally the same rows as CSV for `psql \\copy`).

    generate.py --shape orders --records 1000000 --out bench/data/orders_1m.singer [--csv path]

Output: SCHEMA, RECORDs, a STATE after every 10k records and at the end. The stream is built in 10k-row
chunks, each with its own seed, on a process pool: pure Python row building is the bottleneck and the
chunks are independent. The CSV quotes every text/JSON field so that COPY tells NULL (unquoted empty) from
the empty string (quoted empty).
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson
from shapes import CHUNK, SHAPES, Row, Shape


def state_value(shape: Shape, last_id: int) -> dict[str, Any]:
    return {"bookmarks": {shape.stream: {"replication_key_value": last_id}}}


def schema_line(shape: Shape) -> bytes:
    message = {
        "type": "SCHEMA",
        "stream": shape.stream,
        "schema": shape.schema,
        "key_properties": [shape.key],
    }
    return orjson.dumps(message) + b"\n"


def _csv_text(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def csv_encoder(shape: Shape) -> Callable[[Row], str]:
    """Row → one CSV line in schema column order: NULL unquoted-empty, text quoted, JSON as JSON text."""
    plan: list[tuple[str, str]] = []
    for name, prop in shape.schema["properties"].items():
        types = {prop["type"]} if isinstance(prop["type"], str) else set(prop["type"])
        if types & {"object", "array"}:
            plan.append((name, "json"))
        elif "string" in types:
            plan.append((name, "text"))
        elif "boolean" in types:
            plan.append((name, "bool"))
        else:
            plan.append((name, "plain"))

    def encode(row: Row) -> str:
        out: list[str] = []
        for name, how in plan:
            value = row.get(name)
            if value is None:
                out.append("")
            elif how == "text":
                out.append(_csv_text(value))
            elif how == "json":
                out.append(_csv_text(orjson.dumps(value).decode()))
            elif how == "bool":
                out.append("t" if value else "f")
            else:
                out.append(repr(value))
        return ",".join(out) + "\n"

    return encode


def build_chunk(job: tuple[str, int, int, bool]) -> tuple[bytes, bytes]:
    """Chunk `index` as Singer lines (its RECORDs, then its STATE) and, if asked, as CSV lines."""
    gc.disable()  # ten thousand fresh dicts per chunk: generational GC would rescan them again and again
    shape_name, index, records, with_csv = job
    shape = SHAPES[shape_name]
    rows = shape.chunk(index, records)
    dumps, stream, newline = orjson.dumps, shape.stream, orjson.OPT_APPEND_NEWLINE
    lines = [dumps({"type": "RECORD", "stream": stream, "record": row}, option=newline) for row in rows]
    last_id = rows[-1][shape.key]
    lines.append(orjson.dumps({"type": "STATE", "value": state_value(shape, last_id)}) + b"\n")
    csv = b""
    if with_csv:
        encode = csv_encoder(shape)
        csv = "".join(encode(row) for row in rows).encode()
    return b"".join(lines), csv


def _write_part(job: tuple[str, int, range, Path, Path | None]) -> None:
    """One worker's contiguous run of chunks, into its own files (no pickling of data between processes)."""
    shape_name, records, indexes, out, csv = job
    with out.open("wb") as fout, open(os.devnull if csv is None else csv, "wb") as fcsv:
        for index in indexes:
            singer_bytes, csv_bytes = build_chunk((shape_name, index, records, csv is not None))
            fout.write(singer_bytes)
            fcsv.write(csv_bytes)


def _append(target: IO[bytes], part: Path) -> None:
    with part.open("rb") as source:
        shutil.copyfileobj(source, target, 1 << 22)
    part.unlink()


def generate(shape_name: str, records: int, out: Path, csv: Path | None = None, jobs: int = 0) -> None:
    """Workers write parts, which are concatenated under a temporary name and renamed into place, so a
    killed run never leaves a truncated file where the cache looks for it."""
    shape = SHAPES[shape_name]
    out.parent.mkdir(parents=True, exist_ok=True)
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
    chunks = -(-records // CHUNK)
    workers = max(1, min(jobs or os.cpu_count() or 1, chunks))
    bounds = [chunks * w // workers for w in range(workers + 1)]
    parts = [
        (
            shape_name,
            records,
            range(bounds[w], bounds[w + 1]),
            out.with_name(f"{out.name}.part{w}"),
            csv.with_name(f"{csv.name}.part{w}") if csv is not None else None,
        )
        for w in range(workers)
    ]
    if workers == 1:
        _write_part(parts[0])
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pool.map(_write_part, parts, chunksize=1)
    tmp_out = out.with_name(out.name + ".tmp")
    with tmp_out.open("wb") as fout:
        fout.write(schema_line(shape))
        for part in parts:
            _append(fout, part[3])
    if csv is not None:
        tmp_csv = csv.with_name(csv.name + ".tmp")
        with tmp_csv.open("wb") as fcsv:
            fcsv.write((",".join(shape.columns) + "\n").encode())
            for part in parts:
                _append(fcsv, part[4])  # type: ignore[arg-type]
        tmp_csv.replace(csv)
    tmp_out.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=sorted(SHAPES), required=True)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--csv", type=Path, default=None)
    parser.add_argument("--jobs", type=int, default=0, help="worker processes (default: one per core)")
    args = parser.parse_args(argv)
    if args.records < 1:
        parser.error("--records must be at least 1")
    started = time.perf_counter()
    generate(args.shape, args.records, args.out, args.csv, args.jobs)
    elapsed = time.perf_counter() - started
    print(
        f"{args.records} {args.shape} records in {elapsed:.1f}s "
        f"({args.records / elapsed:,.0f}/s) → {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
