"""BATCH messages: a singer-sdk tap's batch files load like RECORD lines; unreadable ones stop the run."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.target.singer_io import schema_msg, singer, state

PROPS = {
    "id": {"type": "integer"},
    "amount": {"type": "number"},
    "at": {"type": "string", "format": "date-time"},
}

_TAP = """
from singer_sdk import Stream, Tap
from singer_sdk import typing as th


class Orders(Stream):
    name = "orders"
    primary_keys = ("id",)
    replication_key = "id"
    schema = th.PropertiesList(
        th.Property("id", th.IntegerType),
        th.Property("amount", th.NumberType),
        th.Property("at", th.DateTimeType),
    ).to_dict()

    def get_records(self, context):
        for i in range(1, 2501):
            yield {"id": i, "amount": i + 0.25, "at": f"2024-01-01T00:00:{i % 60:02d}+02:00"}


class BatchTap(Tap):
    name = "tap-batchy"
    config_jsonschema = th.PropertiesList().to_dict()

    def discover_streams(self):
        return [Orders(self)]


BatchTap.cli()
"""


def _run_target(config: dict[str, Any], text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "target.json"
    path.write_text(json.dumps(config))
    exe = Path(sys.executable).with_name("target-flx")
    return subprocess.run(
        [str(exe), "--config", str(path)], input=text, capture_output=True, text=True, timeout=120
    )


def test_a_singer_sdk_tap_with_batch_config_loads_every_record(
    target_config: dict[str, Any], query: Callable[..., Any], target_schema: str, tmp_path: Path
) -> None:
    tap = tmp_path / "tap_batchy.py"
    tap.write_text(textwrap.dedent(_TAP))
    files = tmp_path / "batches"
    files.mkdir()
    tap_config = tmp_path / "tap.json"
    tap_config.write_text(
        json.dumps(
            {
                "batch_config": {
                    "encoding": {"format": "jsonl", "compression": "gzip"},
                    "storage": {"root": f"file://{files}", "prefix": "orders-"},
                    "batch_size": 1000,
                }
            }
        )
    )
    out = subprocess.run(
        [sys.executable, str(tap), "--config", str(tap_config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert '"type":"BATCH"' in out.replace(" ", "")  # the tap really sent BATCH messages
    result = _run_target(target_config, out, tmp_path)
    assert result.returncode == 0, result.stderr
    assert query(f'SELECT count(*), min(id), max(id), sum(amount) FROM "{target_schema}".orders') == [
        (2500, 1, 2500, sum(i + 0.25 for i in range(1, 2501)))
    ]
    assert query(f'SELECT at FROM "{target_schema}".orders WHERE id = 61')[0][0].isoformat() == (
        "2023-12-31T22:00:01+00:00"
    )
    states = [json.loads(line) for line in result.stdout.splitlines()]
    assert states and states[-1]["bookmarks"]["orders"]["replication_key_value"] == 2500


def _batch(stream: str, urls: list[str], fmt: str = "jsonl", compression: str = "gzip") -> dict[str, Any]:
    return {
        "type": "BATCH",
        "stream": stream,
        "encoding": {"format": fmt, "compression": compression},
        "manifest": urls,
    }


def _gz(path: Path, records: list[dict[str, Any]]) -> str:
    with gzip.open(path, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    return f"file://{path}"


def test_a_bad_record_in_a_batch_file_keeps_the_state_after_it_back(
    target_config: dict[str, Any], query: Callable[..., Any], target_schema: str, tmp_path: Path
) -> None:
    good = _gz(
        tmp_path / "a.jsonl.gz", [{"id": i, "amount": 1, "at": "2024-01-01T00:00:00Z"} for i in (1, 2)]
    )
    bad = _gz(tmp_path / "b.jsonl.gz", [{"id": 3, "amount": "x", "at": "2024-01-01T00:00:00Z"}])
    text = singer(schema_msg("t", PROPS, ["id"]), _batch("t", [good]), state(1), _batch("t", [bad]), state(2))
    result = _run_target(target_config, text, tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("target-flx: error: stream 't', line 4, field 'amount'")
    )
    assert [json.loads(line) for line in result.stdout.splitlines()] == [1]
    assert query(f'SELECT id FROM "{target_schema}".t ORDER BY id') == [(1,), (2,)]


def test_batch_files_that_cannot_be_read_are_errors_not_skips(
    target_config: dict[str, Any], tmp_path: Path
) -> None:
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"id": 1}\n')
    cases = [
        (_batch("t", [f"file://{tmp_path}/missing.jsonl.gz"]), "cannot read BATCH file"),
        (_batch("t", [f"file://{plain}"]), "cannot read BATCH file"),  # not gzip
        (_batch("t", [f"file://{plain}"], fmt="parquet"), "BATCH format 'parquet' is not supported"),
        (_batch("t", ["s3://bucket/x.jsonl.gz"]), "only local files"),
        (_batch("t", [f"file://{plain}"], compression="zstd"), "compression 'zstd' is not supported"),
    ]
    for message, expected in cases:
        result = _run_target(target_config, singer(schema_msg("t", PROPS), message, state(1)), tmp_path)
        last = result.stderr.strip().splitlines()[-1]
        assert result.returncode == 1, (expected, result.stderr)
        assert "Traceback" not in result.stderr
        assert last.startswith("target-flx: error: stream 't', line 2: ") and expected in last, last
        assert result.stdout.strip() == ""
