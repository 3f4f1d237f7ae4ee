"""The real CLIs piped together: `tap-flx | target-flx`, then every landed row compared with its source."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from flx_core.settings import libpq_conninfo
from tap_flx.tap import CONTROL_TABLES
from tests.tap.conftest import seed_history, table_rows

BIN = Path(sys.executable).parent


@pytest.fixture
def landing(database_url: URL) -> Iterator[tuple[str, str]]:
    """(target schema, target-flx's own control schema), dropped afterwards."""
    schemas = (f"landing_{uuid.uuid4().hex[:8]}", f"target_ctl_{uuid.uuid4().hex[:8]}")
    yield schemas
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _pipe(tap_config: dict[str, Any], target_config: dict[str, Any], tmp: Path, state: Any = None) -> Any:
    """Run `tap-flx --config … [--state …] | target-flx --config …`; return the target's last STATE."""
    tap_file, target_file = tmp / "tap.json", tmp / "target.json"
    tap_file.write_text(json.dumps(tap_config))
    target_file.write_text(json.dumps(target_config))
    tap_cmd = [str(BIN / "tap-flx"), "--config", str(tap_file)]
    if state is not None:
        (tmp / "state.json").write_text(json.dumps(state))
        tap_cmd += ["--state", str(tmp / "state.json")]
    with (tmp / "tap.log").open("w") as tap_log, (tmp / "target.log").open("w") as target_log:
        tap = subprocess.Popen(tap_cmd, stdout=subprocess.PIPE, stderr=tap_log)
        target = subprocess.Popen(
            [str(BIN / "target-flx"), "--config", str(target_file)],
            stdin=tap.stdout,
            stdout=subprocess.PIPE,
            stderr=target_log,
        )
        assert tap.stdout is not None
        tap.stdout.close()  # the target holds the pipe now
        out, _ = target.communicate(timeout=300)
        tap.wait(timeout=60)
    assert tap.returncode == 0, (tmp / "tap.log").read_text()[-3000:]
    assert target.returncode == 0, (tmp / "target.log").read_text()[-3000:]
    states = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert states, "target-flx emitted no STATE"
    return states[-1]


def _assert_landed_exactly(database_url: URL, control_schema: str, target_schema: str) -> None:
    for name in CONTROL_TABLES:
        source = table_rows(database_url, control_schema, name)
        landed = table_rows(database_url, target_schema, name)
        assert landed.keys() == source.keys(), name
        for row_id, row in source.items():
            got = {k: v for k, v in landed[row_id].items() if not k.startswith("_sdc_")}
            assert got == row, (name, row_id)


def test_tap_into_target_lands_every_row_exactly(
    seeded: dict[str, int],
    control_engine: Engine,
    tap_config: dict[str, Any],
    db_config: dict[str, str],
    database_url: URL,
    control_schema: str,
    landing: tuple[str, str],
    tmp_path: Path,
) -> None:
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        conn.execute(
            f'INSERT INTO "{control_schema}".pipelines (name, config) VALUES '
            """('round-trip', '{"pi": 3.14159265358979323846264338327950288, "tenth": 1.10}')"""
        )
    target_schema, target_control = landing
    target_config = {**db_config, "default_target_schema": target_schema, "control_schema": target_control}

    state = _pipe(tap_config, target_config, tmp_path)
    _assert_landed_exactly(database_url, control_schema, target_schema)
    assert set(state["bookmarks"]) == set(CONTROL_TABLES)

    # the next run, from the STATE the target committed, brings the changes: the tables match again
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        conn.execute(f"UPDATE \"{control_schema}\".alerts SET status = 'resolved', resolved_at = now()")
    seed_history(control_engine, pipelines=1, tag="-round-trip")
    _pipe(tap_config, target_config, tmp_path, state=state)
    _assert_landed_exactly(database_url, control_schema, target_schema)
