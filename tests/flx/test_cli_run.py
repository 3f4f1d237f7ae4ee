"""`flx run` as a user types it: a job that does not exist, and Meltano's own options passed through to
`meltano run`, recorded under the job's own pipeline. Real `flx`, real `meltano`, real target-flx."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from flx_core.models import Pipeline
from tests.flx.meltano_project import MeltanoProject, events, executions, make_project

pytestmark = pytest.mark.slow

# A tap that notes the arguments Meltano started it with, so a test can see which options arrived.
ARGV_TAP = """\
#!{python}
import json, sys
from pathlib import Path
with Path(__file__).with_suffix(".argv").open("a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
print(json.dumps({{"type": "SCHEMA", "stream": "argv_items", "key_properties": ["id"],
    "schema": {{"type": "object", "properties": {{"id": {{"type": "integer"}}}}}}}}))
print(json.dumps({{"type": "RECORD", "stream": "argv_items", "record": {{"id": 1}}}}))
print(json.dumps({{"type": "STATE", "value": {{"bookmarks": {{"argv_items": {{"id": 1}}}}}}}}))
"""


@pytest.fixture
def project(tmp_path: Path, database_url: URL) -> MeltanoProject:
    schema = f"cli_{uuid.uuid4().hex[:8]}"
    made = make_project(tmp_path / "project", database_url.render_as_string(hide_password=False), schema)
    script = made.root / "tap_argv.py"
    script.write_text(ARGV_TAP.format(python=sys.executable))
    script.chmod(0o755)
    path = made.root / "meltano.yml"
    document = yaml.safe_load(path.read_text())
    document["plugins"]["extractors"].append(
        {"name": "tap-argv", "namespace": "tap_argv", "executable": str(script), "capabilities": ["state"]}
    )
    document["jobs"].append({"name": "argv-job", "tasks": ["tap-argv target-flx"]})
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return made


@pytest.fixture
def engine(project: MeltanoProject, database_url: URL) -> Iterator[Engine]:
    eng = project.engine(database_url)
    yield eng
    eng.dispose()


def tap_calls(project: MeltanoProject) -> list[list[str]]:
    path = project.root / "tap_argv.argv"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def pipeline_names(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(Pipeline.name)))


def test_an_unknown_job_is_refused_before_anything_is_recorded(
    project: MeltanoProject, engine: Engine
) -> None:
    done = project.flx("run", "nosuch-job")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"flx run: no job, pipeline or plugin named 'nosuch-job' in {project.root / 'meltano.yml'}: "
        "the jobs are argv-job, fail-job, flaky-job, hang-job, ok-job, slow-job, stuck-job"
    )
    typo = project.flx("run", "ok-jb")
    assert typo.returncode == 2
    assert typo.stderr.strip().startswith(
        f"flx run: no job, pipeline or plugin named 'ok-jb' in {project.root / 'meltano.yml'}: "
        "did you mean 'ok-job'? the jobs are "
    )
    blocks = project.flx("run", "tap-ok", "target-flxx")
    assert blocks.returncode == 2
    assert "no job, pipeline or plugin named 'target-flxx'" in blocks.stderr
    assert pipeline_names(engine) == []
    with engine.connect() as conn:
        assert conn.execute(text(f'SELECT count(*) FROM "{project.control}".alerts')).scalar() == 0


def test_meltano_options_reach_meltano_run_and_are_recorded_under_the_job(
    project: MeltanoProject, engine: Engine
) -> None:
    first = project.flx("run", "argv-job")
    assert first.returncode == 0, first.stdout + first.stderr
    second = project.flx("run", "argv-job")
    assert second.returncode == 0, second.stderr
    assert "--state" in tap_calls(project)[1], "Meltano hands the saved state on by default"

    refreshed = project.flx("run", "--full-refresh", "argv-job")
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    assert "--state" not in tap_calls(project)[2], "--full-refresh reached meltano run"
    assert (
        refreshed.stdout.strip()
        .splitlines()[-1]
        .startswith("argv-job: succeeded (meltano run --full-refresh) after 1 attempt(s) (execution ")
    )

    dry = project.flx("run", "argv-job", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert len(tap_calls(project)) == 3, "a dry run starts no plugin"
    assert "Dry run, but would have run block 1/1." in dry.stdout + dry.stderr

    suffixed = project.flx(
        "run", "--state-id-suffix", "nightly", "argv-job", "--", "--state-strategy", "merge"
    )
    assert suffixed.returncode == 0, suffixed.stdout + suffixed.stderr
    assert "'dev:tap-argv-to-target-flx:nightly'" in suffixed.stdout + suffixed.stderr

    # One pipeline, the job's own; each run's options are an event of its execution, not configuration.
    assert pipeline_names(engine) == ["argv-job"]
    runs = executions(engine, "argv-job")
    assert [e.status for e in runs] == ["succeeded"] * 5
    options = [
        [p["options"] for _, kind, p in events(engine, e.id) if kind == "meltano_options"] for e in runs
    ]
    assert options == [
        [],
        [],
        [["--full-refresh"]],
        [["--dry-run"]],
        [["--state-id-suffix", "nightly", "--state-strategy", "merge"]],
    ]
    with Session(engine) as session:
        config = session.scalars(select(Pipeline.config).where(Pipeline.name == "argv-job")).one()
    assert "run_options" not in config


def test_meltano_options_and_the_queue_do_not_mix(project: MeltanoProject) -> None:
    done = project.flx("run", "--queue", "--full-refresh", "ok-job")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "flx run: --retries, --timeout and meltano options apply to local runs; queued runs use the settings "
        "(see `flx run -h`)"
    )


def test_a_configuration_error_is_not_retried(project: MeltanoProject, engine: Engine) -> None:
    path = project.root / "meltano.yml"
    document = yaml.safe_load(path.read_text())
    loader = document["plugins"]["loaders"][0]
    loader["config"]["defualt_target_schema"] = loader["config"].pop("default_target_schema")
    document["plugins"]["loaders"].append(
        {"name": "target-gone", "namespace": "target_gone", "executable": str(project.root / "missing")}
    )
    document["jobs"].append({"name": "gone-job", "tasks": ["tap-ok target-gone"]})
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    retried = {"retries": 3, "retry_delay_seconds": 60}
    project.configure(pipelines={"ok-job": retried, "gone-job": retried})

    for job, reason in (
        ("ok-job", "target-flx: error: unknown setting 'defualt_target_schema'"),
        ("gone-job", "Cannot start plugin target-gone: Executable"),
    ):
        done = project.flx("run", job, timeout=120)
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"{job}: failed after 1 attempt(s)" in done.stderr
        execution = executions(engine, job)[-1]
        assert (execution.status, execution.attempt) == ("failed", 1)
        kinds = [(kind, payload) for _, kind, payload in events(engine, execution.id)]
        assert [kind for kind, _ in kinds] == ["pending", "running", "not_retried", "failed"]
        assert reason in kinds[2][1]["reason"]
        assert reason in (execution.error or "")


def test_each_run_records_its_steps_and_the_projects_plugins(
    project: MeltanoProject, engine: Engine, database_url: URL
) -> None:
    assert project.flx("run", "ok-job").returncode == 0
    steps = f"""SELECT s.position, s.block, pl.name, pl.type FROM "{project.control}".pipeline_steps s
        JOIN "{project.control}".pipelines p ON p.id = s.pipeline_id
        LEFT JOIN "{project.control}".plugins pl ON pl.id = s.plugin_id WHERE p.name = :name
        ORDER BY s.position"""
    plugins = f'SELECT name, type, namespace, config, updated_at FROM "{project.control}".plugins'
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(text(steps), {"name": "ok-job"})] == [
            (1, "tap-ok", "tap-ok", "extractor"),
            (2, "target-flx", "target-flx", "loader"),
        ]
        first = {row.name: row for row in conn.execute(text(plugins))}
    assert {"tap-ok", "tap-argv", "target-flx", "flx"} <= set(first)
    assert (first["flx"].type, first["target-flx"].namespace) == ("utility", "target_flx")
    # the names of the configured settings, never their values (meltano.yml may hold secrets)
    assert first["target-flx"].config == {
        "settings": ["control_schema", "default_target_schema", "sqlalchemy_url"]
    }
    assert database_url.host not in json.dumps(first["target-flx"].config)

    path = project.root / "meltano.yml"
    document = yaml.safe_load(path.read_text())
    job = next(j for j in document["jobs"] if j["name"] == "ok-job")
    job["tasks"] = [["tap-ok target-flx"], "tap-argv target-flx"]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert project.flx("run", "ok-job").returncode == 0
    with engine.connect() as conn:
        assert [r[1] for r in conn.execute(text(steps), {"name": "ok-job"})] == [
            "tap-ok",
            "target-flx",
            "tap-argv",
            "target-flx",
        ]
        again = {row.name: row for row in conn.execute(text(plugins))}
    assert {n: r.updated_at for n, r in again.items()} == {n: r.updated_at for n, r in first.items()}
