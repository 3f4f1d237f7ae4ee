"""Running a real tap: discovery, selecting the suite's one table (full table), extraction to a file."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.compat import sources


@dataclass(frozen=True)
class TapRun:
    """How to run one tap on the suite's source table."""

    tap: str  # a key of tests.compat.taps.TAPS
    config: dict[str, Any]
    table: str  # the source table's name (the stream's table part)
    catalog_flag: str  # --catalog (singer-sdk) or --properties (PipelineWise)
    env: dict[str, str]
    # settings both loaders get for this tap's output (a tap whose records break its own schema)
    target_config: tuple[tuple[str, Any], ...] = ()


# The PostgreSQL taps read a server session in America/New_York, as a tap on such a server does: old
# instants then come with local-mean-time offsets that have seconds (-04:56:02).
NEW_YORK = {"PGTZ": "America/New_York"}
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": ""}
MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}

RUNS = {
    "meltanolabs-tap-postgres": TapRun(
        "meltanolabs-tap-postgres",
        {**PG, "database": "test", "filter_schemas": [sources.PG_SCHEMA]},
        sources.PG_TABLE,
        "--catalog",
        NEW_YORK,
    ),
    "pipelinewise-tap-postgres": TapRun(
        "pipelinewise-tap-postgres",
        {**PG, "dbname": "test", "filter_schemas": sources.PG_SCHEMA},
        sources.PG_TABLE,
        "--properties",
        NEW_YORK,
    ),
    "pipelinewise-tap-mysql": TapRun(
        "pipelinewise-tap-mysql",
        {**MY, "filter_dbs": sources.MY_DATABASE},
        sources.MY_TABLE,
        "--properties",
        {},
    ),
    "meltanolabs-tap-mysql": TapRun(
        "meltanolabs-tap-mysql",
        {**MY, "database": sources.MY_DATABASE, "filter_schemas": [sources.MY_DATABASE]},
        sources.MY_TABLE,
        "--catalog",
        {},
        # it declares BIT as a string and sends an integer: loaded without validation, as text
        (("validate_records", False),),
    ),
}


def _run(command: list[str], env: dict[str, str], stdout: Any = subprocess.PIPE) -> str:
    proc = subprocess.run(
        command, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300, env={**os.environ, **env}
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return proc.stdout or ""


def extract(run: TapRun, executable: Path, workdir: Path) -> Path:
    """The tap's Singer output for the source table (its whole content, full table), as a file."""
    config = workdir / f"{run.tap}.config.json"
    config.write_text(json.dumps(run.config))
    catalog = json.loads(_run([str(executable), "--config", str(config), "--discover"], run.env))
    chosen = 0
    for stream in catalog["streams"]:
        wanted = stream.get("table_name", stream.get("stream")) == run.table or stream[
            "tap_stream_id"
        ].endswith(run.table)
        chosen += wanted
        for entry in stream.get("metadata", []):
            meta = entry.setdefault("metadata", {})
            meta["selected"] = wanted
            if not entry.get("breadcrumb"):
                meta["replication-method"] = "FULL_TABLE"
    assert chosen == 1, f"{run.tap} discovered {chosen} streams named {run.table}"
    catalog_path = workdir / f"{run.tap}.catalog.json"
    catalog_path.write_text(json.dumps(catalog))
    out = workdir / f"{run.tap}.singer.jsonl"
    with out.open("w") as handle:
        _run([str(executable), "--config", str(config), run.catalog_flag, str(catalog_path)], run.env, handle)
    return out
