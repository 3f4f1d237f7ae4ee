"""A throwaway Meltano project with small executable taps that succeed, fail, fail once, or hang.

The loader is the real target-flx writing to the test database, so a run also produces stream loads linked
to the flx execution. Everything is installed already (`executable:` paths, no `pip_url`), so `meltano run`
works offline and takes seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from flx_core.database import make_engine
from flx_core.migrate import ensure_schema
from flx_core.models import Execution, ExecutionEvent, Pipeline
from flx_core.settings import DatabaseSettings
from tests.pipes import closing_pipes

BIN = Path(sys.executable).parent
# "stuck" hangs like "hang", under its own Meltano state ID, so a SIGKILLed run cannot block other tests.
# "slow" succeeds after a few seconds: long enough to kill its runner mid-run.
MODES = ("ok", "fail", "flaky", "hang", "stuck", "slow")

TAP = """\
#!{python}
import json, os, sys, time
from pathlib import Path

mode = "{mode}".replace("stuck", "hang")
count = Path(__file__).with_suffix(".count")
calls = int(count.read_text()) + 1 if count.exists() else 1
count.write_text(str(calls))
n = int(os.environ.get("TAP_RECORDS", "5"))
print(json.dumps({{"type": "SCHEMA", "stream": "items", "key_properties": ["id"],
    "schema": {{"type": "object", "properties": {{
        "id": {{"type": "integer"}}, "name": {{"type": ["string", "null"]}}}}}}}}))
for i in range(n):
    record = {{"id": i, "name": None if i == 3 else f"n{{i}}"}}
    print(json.dumps({{"type": "RECORD", "stream": "items", "record": record}}))
sys.stdout.flush()
if mode == "fail" or (mode == "flaky" and calls == 1):
    print("source refused the connection: ORA-12541 no listener", file=sys.stderr)
    sys.exit(3)
if mode == "hang":
    time.sleep(600)
if mode == "slow":
    time.sleep(8)
print(json.dumps({{"type": "STATE", "value": {{"bookmarks": {{"items": {{"id": n}}}}}}}}))
"""


def project_env(database_url: str, control: str) -> dict[str, str]:
    """The environment a test project's commands run in: this venv's commands first, the test database
    and the project's own control schema, nothing inherited that would point at another project or run."""
    env = {
        **os.environ,
        "FLX_DATABASE_URL": database_url,
        "FLX_CONTROL_SCHEMA": control,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_DISABLE_TRACKING": "true",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    for inherited in ("MELTANO_PROJECT_ROOT", "FLX_EXECUTION_ID", "MELTANO_ENVIRONMENT"):
        env.pop(inherited, None)
    return env


def run_flx(
    root: Path, env: dict[str, str], *args: str, timeout: float, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """`flx ARGS` in a project, as a user's shell runs it; its output captured, its exit code not checked."""
    return subprocess.run(
        [str(BIN / "flx"), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


@dataclass
class MeltanoProject:
    root: Path
    env: dict[str, str]
    schema: str
    control: str  # this project's own control schema: tests share one database, never their history

    def engine(self, database_url: URL) -> Engine:
        """An engine whose `flx` models read this project's control schema (migrated if missing)."""
        settings = DatabaseSettings(
            sqlalchemy_url=database_url.render_as_string(hide_password=False),  # type: ignore[arg-type]
            control_schema=self.control,
        )
        engine = make_engine(settings)
        ensure_schema(engine, self.control)
        return engine

    def flx(self, *args: str, timeout: float = 240, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return run_flx(self.root, self.env, *args, timeout=timeout, **kwargs)

    def flx_background(self, *args: str) -> subprocess.Popen[str]:
        return closing_pipes(
            subprocess.Popen(
                [str(BIN / "flx"), *args],
                cwd=self.root,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        )

    def tap_calls(self, mode: str) -> int:
        count = self.root / f"tap_{mode}.count"
        return int(count.read_text()) if count.exists() else 0

    def configure(self, **settings: Any) -> None:
        """Change the flx plugin's config in meltano.yml, as a user would edit the file."""
        path = self.root / "meltano.yml"
        document = yaml.safe_load(path.read_text())
        flx = next(p for p in document["plugins"]["utilities"] if p["name"] == "flx")
        flx["config"].update(settings)
        path.write_text(yaml.safe_dump(document, sort_keys=False))


def flx_plugin(flx_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The flx utility as the test projects declare it: quick heartbeats, a short kill grace."""
    config = {
        "heartbeat_interval_seconds": 0.5,
        "stale_after_seconds": 30,
        "kill_grace_seconds": 3,
        "pipelines": {},
        **(flx_config or {}),
    }
    return {"name": "flx", "namespace": "flx", "executable": str(BIN / "flx"), "config": config}


def make_project(
    root: Path, database_url: str, schema: str, flx_config: Mapping[str, Any] | None = None
) -> MeltanoProject:
    root.mkdir(parents=True, exist_ok=True)
    control = f"ctl_{uuid.uuid4().hex[:8]}"
    extractors = []
    for mode in MODES:
        script = root / f"tap_{mode}.py"
        script.write_text(TAP.format(python=sys.executable, mode=mode))
        script.chmod(0o755)
        extractors.append({"name": f"tap-{mode}", "namespace": f"tap_{mode}", "executable": str(script)})
    document = {
        "version": 1,
        "project_id": "flx-e2e",
        "default_environment": "dev",
        "environments": [{"name": "dev"}],
        "send_anonymous_usage_stats": False,
        "plugins": {
            "extractors": extractors,
            "loaders": [
                {
                    "name": "target-flx",
                    "namespace": "target_flx",
                    "executable": str(BIN / "target-flx"),
                    "config": {
                        "sqlalchemy_url": database_url,
                        "default_target_schema": schema,
                        "control_schema": control,
                    },
                }
            ],
            "utilities": [flx_plugin(flx_config)],
        },
        "jobs": [{"name": f"{mode}-job", "tasks": [f"tap-{mode} target-flx"]} for mode in MODES],
    }
    (root / "meltano.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    env = project_env(database_url, control)
    return MeltanoProject(root, env, schema, control)


def executions(engine: Engine, pipeline: str) -> list[Execution]:
    """A pipeline's executions, oldest first, detached so tests can read them after the session."""
    with Session(engine) as session:
        rows = list(
            session.scalars(
                select(Execution)
                .join(Pipeline, Pipeline.id == Execution.pipeline_id)
                .where(Pipeline.name == pipeline)
                .order_by(Execution.execution_number)
            )
        )
        session.expunge_all()
        return rows


def events(engine: Engine, execution_id: uuid.UUID) -> list[tuple[int, str, dict[str, Any]]]:
    """An execution's events as (seq, type, payload), oldest first."""
    with Session(engine) as session:
        rows = session.execute(
            select(ExecutionEvent.seq, ExecutionEvent.type, ExecutionEvent.payload)
            .where(ExecutionEvent.execution_id == execution_id)
            .order_by(ExecutionEvent.seq)
        )
        return [(seq, type_, payload) for seq, type_, payload in rows]
