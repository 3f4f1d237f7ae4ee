"""The `flx` command line: run pipelines, read their history, check the setup, manage the control schema."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
from pathlib import Path
from types import FrameType

import click
from sqlalchemy import Engine

from flx_core import migrate
from flx_core.database import resolve
from flx_core.embedded import embedded_bin_dir
from flx_core.settings import libpq_conninfo
from orchestrator.cli_context import app, console, engine_and_schema, err_console, load
from orchestrator.cli_demo import demo
from orchestrator.cli_schedule import queue_app, schedule, serve, worker
from orchestrator.history import ExecutionNotFound, execution_detail, recent_executions
from orchestrator.preflight import preflight
from orchestrator.queue import enqueue
from orchestrator.runner import Runner
from orchestrator.views import detail_view, history_table, status_text


@click.group()
@click.option("--log-level", default="info", show_default=True, help="debug, info, warning, error")
def main(log_level: str) -> None:
    """flx: reliable Meltano ELT runs with history, validations and alerts."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if log_level.lower() != "debug":
        logging.getLogger("alembic").setLevel(logging.WARNING)  # "Context impl …" on every start


@main.command()
@click.argument("job_or_blocks", nargs=-1, required=True)
@click.option("--retries", type=click.IntRange(min=0), help="Retries after a failure (overrides settings).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds per attempt.")
@click.option("--trigger", default="manual", show_default=True, help="Recorded as the execution's trigger.")
@click.option(
    "--queue", "use_queue", is_flag=True, help="Queue it for a `flx worker` instead of running here."
)
def run(
    job_or_blocks: tuple[str, ...], retries: int | None, timeout: float | None, trigger: str, use_queue: bool
) -> None:
    """Run a Meltano job (or blocks) with retries, a timeout, no overlap, validations and alerts."""
    settings = load()
    if use_queue:
        if retries is not None or timeout is not None:
            raise click.UsageError("--retries/--timeout apply to local runs; queued runs use the settings")
        job = enqueue(queue_app(settings), job_or_blocks, trigger)
        console.print(f"queued {' '.join(job_or_blocks)} as job {job}")
        return
    pipeline = settings.pipeline(job_or_blocks)
    with app(settings) as container:
        runner = container.resolve(Runner)

        def cancel(signum: int, _frame: FrameType | None) -> None:
            err_console.print(f"flx: {signal.Signals(signum).name} received, stopping the run…")
            runner.cancel()

        signal.signal(signal.SIGTERM, cancel)
        signal.signal(signal.SIGINT, cancel)
        outcome = runner.run(pipeline, trigger=trigger, retries=retries, timeout_seconds=timeout)
    line = f"{outcome.pipeline}: " + status_text(outcome.status.value).markup
    line += f" after {outcome.attempts} attempt(s) (execution {outcome.execution_id})"
    (console if outcome.cli_exit_code == 0 else err_console).print(line)
    if outcome.error:
        err_console.print(outcome.error, markup=False, highlight=False)
    sys.exit(outcome.cli_exit_code)


@main.command()
@click.option("--pipeline", help="Only this pipeline.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array, newest first.")
def history(pipeline: str | None, limit: int, as_json: bool) -> None:
    """Recent executions, newest first."""
    with app() as container:
        rows = recent_executions(container.resolve(Engine), pipeline, limit)
    if as_json:
        click.echo(json.dumps([row.as_json() for row in rows], indent=2))
    else:
        console.print(history_table(rows))


@main.command()
@click.argument("execution")
def show(execution: str) -> None:
    """One execution: its facts, events, stream loads and validation results (id, id prefix or pipeline#N)."""
    with app() as container:
        try:
            detail = execution_detail(container.resolve(Engine), execution)
        except ExecutionNotFound as exc:
            raise click.ClickException(str(exc)) from None
    console.print(detail_view(detail))


@main.command()
def check() -> None:
    """Preflight: PostgreSQL, each Oracle source, the Meltano project, alert channels; one line each."""
    with app() as container:
        results = preflight(container)
    for result in results:
        mark = "[green]✓[/]" if result.ok else "[bold red]✗[/]"
        console.print(f"{mark} {result.name}: {result.detail}", highlight=False, soft_wrap=True)
    if not all(result.ok for result in results):
        sys.exit(1)


@main.group()
def db() -> None:
    """Manage the control schema (Alembic migrations)."""


@db.command()
@click.option("--revision", default="head", show_default=True)
def upgrade(revision: str) -> None:
    """Create or upgrade the control schema (idempotent)."""
    engine, schema = engine_and_schema()
    migrate.upgrade(engine, schema, revision)
    console.print(f"control schema [bold]{schema}[/] at revision {migrate.current_revision(engine, schema)}")


@db.command()
@click.option("--revision", default="base", show_default=True)
def downgrade(revision: str) -> None:
    """Downgrade the control schema (to base: drops every flx table)."""
    engine, schema = engine_and_schema()
    migrate.downgrade(engine, schema, revision)
    console.print(f"control schema [bold]{schema}[/] at revision {migrate.current_revision(engine, schema)}")


@db.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
def psql(psql_args: tuple[str, ...]) -> None:
    """Open psql on flx's database (the embedded one too); extra arguments go to psql."""
    url = resolve(load().database).url()
    executable = shutil.which("psql") or str(Path(embedded_bin_dir()) / "psql")
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)  # the environment, not argv: argv is visible in `ps`
    conninfo = libpq_conninfo(url.set(password=None))
    os.execvpe(executable, [executable, conninfo, *psql_args], env)


@db.command()
def current() -> None:
    """Print the control schema's revision and the newest one this flx knows."""
    engine, schema = engine_and_schema()
    revision = migrate.current_revision(engine, schema)
    head = migrate.head_revision()
    state = "up to date" if revision == head else "behind: run `flx db upgrade`"
    console.print(f"control schema [bold]{schema}[/]: {revision or 'empty'} (head {head}, {state})")


main.add_command(demo)
main.add_command(serve)
main.add_command(schedule)
main.add_command(worker)

if __name__ == "__main__":
    sys.exit(main())
