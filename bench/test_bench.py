"""The benchmark's own checks: the data is what the README promises, and a small run really loads it.

Run: `.venv/bin/python -m pytest bench/test_bench.py -q` (the end-to-end test needs the PostgreSQL at
BENCH_DATABASE_URL or 127.0.0.1:5432 and is skipped without one).
"""

from __future__ import annotations

import csv
import decimal
import io
import re
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate
import run
from shapes import SHAPES

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$")


def _messages(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_stream_is_deterministic_and_shorter_runs_are_prefixes(tmp_path: Path) -> None:
    long, short, again = tmp_path / "long.singer", tmp_path / "short.singer", tmp_path / "again.singer"
    generate.generate("orders", 25_000, long, jobs=2)
    generate.generate("orders", 12_345, short, jobs=1)
    generate.generate("orders", 25_000, again, jobs=1)
    assert long.read_bytes() == again.read_bytes()
    records = lambda p: [m["record"] for m in _messages(p) if m["type"] == "RECORD"]  # noqa: E731
    assert records(short) == records(long)[:12_345]


def test_orders_messages(tmp_path: Path) -> None:
    out = tmp_path / "o.singer"
    generate.generate("orders", 20_001, out)
    messages = _messages(out)
    assert messages[0]["type"] == "SCHEMA" and messages[0]["key_properties"] == ["order_id"]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    assert states[-1] == {"bookmarks": {"orders": {"replication_key_value": 20_001}}}
    assert len(states) == 3 and messages[-1]["type"] == "STATE"
    rows = [m["record"] for m in messages if m["type"] == "RECORD"]
    assert [r["order_id"] for r in rows] == list(range(1, 20_002))
    raw_lines = out.read_bytes().splitlines()[1:200]
    for line in raw_lines:
        if b'"RECORD"' not in line:
            continue
        amount = re.search(rb'"amount":([^,]+),', line)
        assert amount is not None and re.fullmatch(rb"\d+(\.\d{1,4})?", amount.group(1)), line
    notes = {r["note"] for r in rows}
    assert None in notes and "" in notes and any("\t" in n for n in notes if n)
    for row in rows[:500]:
        assert TIMESTAMP.match(row["created_at"]) and TIMESTAMP.match(row["updated_at"])
        assert uuid.UUID(row["order_uuid"]).version == 4
    sizes = [len(line) for line in raw_lines]
    assert 400 < sum(sizes) / len(sizes) < 600


def test_csv_holds_the_same_rows(tmp_path: Path) -> None:
    out, csv_path = tmp_path / "o.singer", tmp_path / "o.csv"
    generate.generate("orders", 3_000, out, csv_path)
    rows = [m["record"] for m in _messages(out) if m["type"] == "RECORD"]
    text = csv_path.read_text()
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == SHAPES["orders"].columns
    assert len(parsed) == 1 + len(rows)
    for record, fields in zip(rows, parsed[1:], strict=True):
        assert fields[0] == str(record["order_id"])
        assert decimal.Decimal(fields[3]) == decimal.Decimal(repr(record["amount"]))
        assert orjson.loads(fields[10]) == record["attrs"]
        assert fields[8] == (record["note"] or "")
    # NULL is an unquoted empty field, the empty string a quoted one: COPY tells them apart.
    assert ',,"[' in text and ',"",' in text


def test_last_state_reads_bare_and_wrapped_state_lines(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text('{"bookmarks": {"orders": {"replication_key_value": 5}}}\n\n')
    assert run._bookmark(run.last_state(out)) == 5
    out.write_text('{"type": "STATE", "value": {"bookmarks": {"orders": {"replication_key_value": 7}}}}\n')
    assert run.last_state(out) == generate.state_value(SHAPES["orders"], 7)
    out.write_text("")
    assert run.last_state(out) is None


def _server_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _server_up(), reason="needs PostgreSQL on 127.0.0.1:5432")
def test_small_run_loads_and_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "DATA", tmp_path / "data")
    monkeypatch.setattr(run, "RESULTS", tmp_path / "results")
    assert run.main(["--shape", "narrow", "--records", "2500", "--only", "flx-append,psql"]) == 0
    table = (tmp_path / "results" / "narrow_2500.md").read_text()
    assert re.search(r"\| flx-append \| 2,500 \|.*\| ok \|", table)
    assert re.search(r"\| psql \| 2,500 \|.*\| ok \|", table)
    # The check really checks: cut the cached CSV short, and psql's load is reported as failed.
    cached = tmp_path / "data" / "narrow_2500.csv"
    cached.write_text("".join(cached.read_text().splitlines(keepends=True)[:1001]))
    assert run.main(["--shape", "narrow", "--records", "2500", "--only", "psql"]) == 1
    table = (tmp_path / "results" / "narrow_2500.md").read_text()
    assert "row count 1000 != 2500" in table
    assert re.search(r"\| flx-append \| 2,500 \|.*\| ok \|", table)  # kept from the first run
