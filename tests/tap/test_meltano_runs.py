"""`meltano_runs` read from a real Meltano system database written by real `meltano run` invocations.

The Meltano project is a throwaway one in tmp_path: a custom extractor and loader whose `executable` is a
script in the project and with no `pip_url`, so nothing is installed and nothing touches the network.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError, ProgrammingError

from flx_core.settings import libpq_conninfo
from tap_flx.meltano_runs import meltano_engine
from tap_flx.tap import TapFlx
from tests.pipes import closing_pipes
from tests.tap.conftest import Synced, parse_output, select_only

MELTANO = Path(sys.executable).with_name("meltano")
STATE_ID = "dev:tap-x-to-target-y"

TAP_X = """\
import json
print(json.dumps({"type": "SCHEMA", "stream": "s", "schema": {"properties": {"id": {"type": "integer"}}},
                  "key_properties": ["id"]}))
print(json.dumps({"type": "RECORD", "stream": "s", "record": {"id": 1}}))
print(json.dumps({"type": "STATE", "value": {"bookmarks": {"s": {"n": 1}}}}))
"""
TARGET_Y = """\
import os, pathlib, sys, time
state = None
for line in sys.stdin:
    if '"STATE"' in line:
        state = line
gate = os.environ.get("TARGET_Y_WAIT_FOR")
while gate and not pathlib.Path(gate).exists():  # lets a test see the run while it is RUNNING
    time.sleep(0.1)
if os.environ.get("TARGET_Y_FAIL") == "1":
    sys.stderr.write("target-y: failing on purpose\\n")
    sys.exit(3)
print('{"bookmarks": {"s": {"n": 1}}}')
"""


@dataclass
class MeltanoProject:
    root: Path
    uri: str  # Meltano's system database, as given to tap-flx

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "TAP_", "TARGET_"))}
        return {
            **env,
            "MELTANO_DATABASE_URI": self.uri.replace("postgresql://", "postgresql+psycopg://"),
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "NO_COLOR": "1",
            **extra,
        }

    def command(self, *args: str) -> list[str]:
        return [str(MELTANO), "--cwd", str(self.root), *args]

    def run(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            env=self.env(**extra_env),
            capture_output=True,
            text=True,
            timeout=180,
        )

    def rows(self) -> list[tuple[Any, ...]]:
        engine = meltano_engine(self.uri)
        try:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT id, state, run_id FROM runs ORDER BY id"))
                return [tuple(row) for row in rows]
        finally:
            engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def system_database(request: pytest.FixtureRequest, tmp_path: Path, database_url: URL) -> Iterator[str]:
    """Meltano's system database: a SQLite file, or a PostgreSQL database of its own on the test server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meltano.db'}"
        return
    name = f"meltano_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        # a bare postgresql:// URI, as users write it: tap-flx picks the driver
        yield database_url.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def meltano_project(tmp_path: Path, system_database: str) -> MeltanoProject:
    root = tmp_path / "project"
    root.mkdir()
    for name, body in (("tap-x", TAP_X), ("target-y", TARGET_Y)):
        script = root / name
        script.write_text(f"#!{sys.executable}\n{body}")
        script.chmod(0o755)
    (root / "meltano.yml").write_text(
        f"""\
project_id: 00000000-0000-4000-8000-000000000001
send_anonymous_usage_stats: false
default_environment: dev
environments:
- name: dev
plugins:
  extractors:
  - name: tap-x
    namespace: tap_x
    executable: {root / "tap-x"}
  loaders:
  - name: target-y
    namespace: target_y
    executable: {root / "target-y"}
"""
    )
    return MeltanoProject(root, system_database)


def _run_ids(output: str) -> list[str]:
    return re.findall(r"run ID '([0-9a-f-]{36})'", output)


@pytest.fixture
def sync_runs(tap_config: dict[str, Any]) -> Callable[..., Synced]:
    """tap-flx with only meltano_runs selected."""

    def run(uri: str, state: dict[str, Any] | None = None, **overrides: Any) -> Synced:
        config = {**tap_config, "meltano_database_uri": uri, **overrides}
        catalog = select_only(TapFlx(config=config).catalog_dict, {"meltano_runs"})
        tap = TapFlx(config=config, catalog=catalog, state=state)
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        with redirect_stdout(out):
            tap.sync_all()
            out.flush()
        return parse_output(out.buffer.getvalue().decode())

    return run


@pytest.mark.slow
def test_runs_from_real_meltano_invocations(
    meltano_project: MeltanoProject, sync_runs: Callable[..., Synced]
) -> None:
    ok = meltano_project.run("run", "tap-x", "target-y")
    assert ok.returncode == 0, ok.stderr[-3000:]
    failed = meltano_project.run("run", "tap-x", "target-y", TARGET_Y_FAIL="1")
    assert failed.returncode != 0
    # `meltano state set` writes a STATE_EDIT row, which is not a run
    edit = meltano_project.run("state", "set", "--force", STATE_ID, '{"singer_state": {"n": 2}}')
    assert edit.returncode == 0, edit.stderr[-3000:]
    assert [row[1] for row in meltano_project.rows()] == ["SUCCESS", "FAIL", "STATE_EDIT"]

    synced = sync_runs(meltano_project.uri)
    runs = synced.records["meltano_runs"]
    assert synced.records.keys() == {"meltano_runs"}
    assert [r["state"] for r in runs] == ["SUCCESS", "FAIL"]
    assert [r["run_id"] for r in runs] == _run_ids(ok.stderr + ok.stdout) + _run_ids(
        failed.stderr + failed.stdout
    )
    assert all(r["state_id"] == STATE_ID and r["trigger"] == "cli" for r in runs)
    assert runs[0]["error"] is None
    assert runs[1]["error"] == "Loader failed"
    for run in runs:
        assert run["started_at"] <= run["last_heartbeat_at"] <= run["ended_at"] == run["updated_at"]
        assert run["ended_at"].endswith("+00:00")
    assert synced.last_state["bookmarks"]["meltano_runs"]["replication_key_value"] == runs[1]["updated_at"]

    # incremental: with no lookback, the run at the bookmark (inclusive) and the new one come back; with
    # the default lookback, the recent ones too
    again = meltano_project.run("run", "tap-x", "target-y")
    assert again.returncode == 0
    state = synced.last_state
    new = sync_runs(meltano_project.uri, state=state, meltano_runs_lookback_seconds=0)
    assert [r["run_id"] for r in new.records["meltano_runs"]] == [
        runs[1]["run_id"],
        *_run_ids(again.stderr + again.stdout),
    ]
    recent = sync_runs(meltano_project.uri, state=state)
    assert [r["state"] for r in recent.records["meltano_runs"]] == ["SUCCESS", "FAIL", "SUCCESS"]
    assert recent.last_state == new.last_state


@pytest.mark.slow
@pytest.mark.parametrize("system_database", ["sqlite"], indirect=True)
def test_a_run_read_while_running_is_read_again_when_it_ends(
    meltano_project: MeltanoProject, sync_runs: Callable[..., Synced], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    proc = closing_pipes(
        subprocess.Popen(
            meltano_project.command("run", "tap-x", "target-y"),
            env=meltano_project.env(TARGET_Y_WAIT_FOR=str(gate)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    try:
        deadline = time.monotonic() + 120
        while _states(meltano_project) != ["RUNNING"]:
            assert time.monotonic() < deadline, "meltano never recorded a RUNNING run"
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        during = sync_runs(meltano_project.uri, meltano_runs_lookback_seconds=0)
        [running] = during.records["meltano_runs"]
        assert running["state"] == "RUNNING" and running["ended_at"] is None
    finally:
        gate.touch()
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-3000:]

    after = sync_runs(meltano_project.uri, state=during.last_state, meltano_runs_lookback_seconds=0)
    [ended] = after.records["meltano_runs"]
    assert ended["id"] == running["id"]
    assert ended["state"] == "SUCCESS"
    assert ended["updated_at"] == ended["ended_at"] > running["updated_at"]


def _states(project: MeltanoProject) -> list[str]:
    try:
        return [row[1] for row in project.rows()]
    except OperationalError:  # the database or table is not created yet
        return []
    except ProgrammingError:  # PostgreSQL: no table yet
        return []
