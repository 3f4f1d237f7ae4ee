"""The repo's own Meltano project, for real: `meltano install` from the lock files, the demo load twice
(the second incremental), the history export, all through `flx run`, against the test database."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from flx.scripts.lockfiles import main as lockfiles_main

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def test_lock_files_match_the_plugins_about() -> None:
    assert lockfiles_main(["--root", str(REPO), "--check"]) == 0


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, database_url: URL) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("demo") / "project"
    root.mkdir()
    for name in ("meltano.yml", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, root / name)
    for folder in ("plugins", "flx_core", "target_flx", "tap_flx", "flx"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    url = database_url.render_as_string(hide_password=False)
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FLX_DATABASE_URL": url,
        # Meltano's env-var config: the namespace prefix reaches target-flx--reporting too.
        "TARGET_FLX_SQLALCHEMY_URL": url,
        "TAP_FLX_SQLALCHEMY_URL": url,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    for name in ("MELTANO_PROJECT_ROOT", "FLX_EXECUTION_ID", "MELTANO_ENVIRONMENT", "FLX_HOME"):
        env.pop(name, None)
    done = subprocess.run(
        [str(BIN / "meltano"), "install"], cwd=root, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return root, env


def flx(project: tuple[Path, dict[str, str]], *args: str) -> subprocess.CompletedProcess[str]:
    root, env = project
    return subprocess.run(
        [str(BIN / "flx"), *args], cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def source_env(project: tuple[Path, dict[str, str]]) -> None:
    done = flx(project, "demo", "source-env")
    assert done.returncode == 0, done.stderr
    for line in done.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        project[1][name] = shlex.split(value)[0]


def loads(engine: Engine, execution_id: str) -> dict[str, tuple[int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT table_name, rows_inserted, rows_updated FROM flx.stream_loads WHERE execution_id = :e"
            ),
            {"e": execution_id},
        )
        return {table: (inserted, updated) for table, inserted, updated in rows}


def test_demo_load_twice_then_history_export(project: tuple[Path, dict[str, str]], engine: Engine) -> None:
    assert flx(project, "demo", "seed").returncode == 0
    source_env(project)
    first = flx(project, "run", "demo-load")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    with engine.connect() as conn:
        counts = [
            conn.execute(text(f"SELECT count(*) FROM analytics.{t}")).scalar()
            for t in ("order_headers", "order_lines", "allocations")
        ]
        source = [
            conn.execute(text(f"SELECT count(*) FROM warehouse.{t}")).scalar()
            for t in ("order_headers", "order_lines", "allocations")
        ]
    assert counts == source and counts[0] == 8000

    second_round = flx(project, "demo", "seed")
    assert "600 orders changed" in second_round.stdout
    second = flx(project, "run", "demo-load")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]

    history = json.loads(flx(project, "history", "--json", "--pipeline", "demo-load").stdout)
    assert [row["status"] for row in history[:2]] == ["succeeded", "succeeded"]
    # Incremental: the second run brings the new round and the changed orders, not the whole source again
    # (the bookmark's `>=` re-reads the last row of each table, which arrives unchanged).
    inserted, updated = loads(engine, history[0]["id"])["order_headers"]
    assert inserted == 8000
    assert updated == 600
    with engine.connect() as conn:
        checks = conn.execute(
            text("SELECT check_name, status FROM flx.validation_results WHERE execution_id = :e"),
            {"e": history[0]["id"]},
        ).all()
    assert len(checks) == 5 and {status for _, status in checks} == {"passed"}

    export = flx(project, "run", "history-export")
    assert export.returncode == 0, export.stdout[-3000:] + export.stderr[-3000:]
    with engine.connect() as conn:
        exported = conn.execute(
            text("SELECT count(*) FROM flx_reporting.executions WHERE status = 'succeeded'")
        ).scalar()
        meltano_runs = conn.execute(text("SELECT count(*) FROM flx_reporting.meltano_runs")).scalar()
    assert exported is not None and exported >= 2
    assert meltano_runs is not None and meltano_runs >= 2

    report = flx(project, "demo", "report")
    assert report.returncode == 0 and "analytics.order_headers" in report.stdout and "16,000" in report.stdout
