"""The embedded PostgreSQL: started on demand, shared by concurrent processes, data kept in FLX_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from flx_core.settings import libpq_conninfo
from tests.embedded_server import stop_embedded

SCRIPT = """
import sys
from sqlalchemy.engine import make_url
from flx_core.embedded import embedded_url
from flx_core.settings import libpq_conninfo
import psycopg
url = embedded_url("flx")
with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
    conn.execute(f"CREATE TABLE mark_{sys.argv[1]} (who text)")
print(url.render_as_string(hide_password=False))
"""


@pytest.mark.slow
def test_two_processes_share_one_server(tmp_path: Path) -> None:
    env = {**os.environ, "FLX_HOME": str(tmp_path / "home")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, name],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("first", "second")
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    urls = {out.strip().splitlines()[-1] for out, _ in outputs}
    assert len(urls) == 1  # one server, one database
    assert (tmp_path / "home" / "pgdata" / "PG_VERSION").exists()
    url = make_url(urls.pop())
    with psycopg.connect(libpq_conninfo(url)) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'mark_%'").fetchall()
        assert sorted(t for (t,) in tables) == ["mark_first", "mark_second"]
    stop_embedded(tmp_path / "home" / "pgdata")


@pytest.mark.slow
def test_target_says_which_database_it_uses(tmp_path: Path) -> None:
    """With nothing configured target-flx loads into the embedded server and says so in its log."""
    env = {**os.environ, "FLX_HOME": str(tmp_path / "home")}
    exe = Path(sys.executable).with_name("target-flx")
    config = tmp_path / "config.json"
    config.write_text('{"default_target_schema": "demo"}')
    text = (
        '{"type": "SCHEMA", "stream": "s", "key_properties": [], '
        '"schema": {"properties": {"a": {"type": "integer"}}}}\n'
        '{"type": "RECORD", "stream": "s", "record": {"a": 1}}\n'
    )
    proc = subprocess.run(
        [str(exe), "--config", str(config)], input=text, env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    assert "Using the embedded PostgreSQL in" in proc.stderr
    assert str(tmp_path / "home" / "pgdata") in proc.stderr
    stop_embedded(tmp_path / "home" / "pgdata")
