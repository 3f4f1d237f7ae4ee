"""The `flx` command line: run pipelines, read their history, check the setup, manage the control schema.

Each command imports what it needs when it runs, so reading history does not load the runner, the queue,
Alembic or apprise. A mistake or an unreachable dependency ends the command with one line and an exit code
from `flx.cli.errors`; FLX_DEBUG=1 adds the traceback.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, Literal

import click

from flx.cli.context import (
    app,
    console,
    database,
    database_where,
    engine_and_schema,
    err_console,
    load,
    reader,
    require_project,
)
from flx.cli.errors import (
    EXIT_FAILED,
    EXIT_USAGE,
    FlxError,
    UsageMistake,
    debug,
    one_line_usage,
    translate,
)

LOG_LEVELS = ("debug", "info", "warning", "error")
RUNNING_COMMANDS = ("run", "serve", "worker")


class FlxGroup(click.Group):
    """A click group whose failures are one line each: usage mistakes, settings, the database, bugs."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise one_line_usage(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, FlxError, UsageMistake):
            raise
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise one_line_usage(exc) from None
        except click.ClickException as exc:
            raise FlxError(exc.format_message(), exc.exit_code) from exc
        except Exception as exc:
            raise translate(exc, database_where[0] if database_where else None) from exc


class RunCommand(click.Command):
    """`flx run JOB -- ARGS…`: what follows `--` goes to `meltano run` as it is."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            at = args.index("--")
            args, ctx.meta["meltano_args"] = args[:at], tuple(args[at + 1 :])
        return super().parse_args(ctx, args)


@click.group(cls=FlxGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="How much flx logs.",
)
@click.option(
    "--log-format",
    default="plain",
    show_default=True,
    envvar="FLX_LOG_FORMAT",
    type=click.Choice(("plain", "json"), case_sensitive=False),
    help="json: one JSON object a line, for log shippers (also FLX_LOG_FORMAT=json).",
)
@click.version_option(package_name="flx", prog_name="flx", message="%(prog)s %(version)s")
@click.pass_context
def main(ctx: click.Context, log_level: str, log_format: str) -> None:
    """flx: reliable Meltano ELT runs with history, validations and alerts.

    Exit codes: 0 success, 1 the run failed or `flx check` found a problem, 2 a mistake in the command
    line or the configuration, 3 a validation failed, 69 PostgreSQL or meltano unreachable, 70 a bug in
    flx, 75 skipped (already running), 124 timed out, 130 cancelled. FLX_DEBUG=1 shows tracebacks.
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if log_format.lower() == "json":
        from flx_core.logs import JsonFormatter

        os.environ["FLX_LOG_FORMAT"] = "json"  # the plugins `meltano run` starts log the same way
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter("flx"))
    if log_level.lower() != "debug":
        logging.getLogger("alembic").setLevel(logging.WARNING)  # "Context impl …" on every start
    if log_level.lower() == "info" and ctx.invoked_subcommand not in RUNNING_COMMANDS:
        # Reading commands print where the data is only when it is the embedded server.
        logging.getLogger("flx_core.database").setLevel(logging.WARNING)
    if not debug():
        import warnings

        # A library's deprecation notice is not the user's business; FLX_DEBUG=1 shows them.
        warnings.filterwarnings("ignore", category=DeprecationWarning)


@main.command(cls=RunCommand)
@click.argument("job_or_blocks", nargs=-1, required=True)
@click.option("--retries", type=click.IntRange(min=0), help="Retries after a failure (overrides settings).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds per attempt.")
@click.option("--trigger", default="manual", show_default=True, help="Recorded as the execution's trigger.")
@click.option(
    "--queue", "use_queue", is_flag=True, help="Queue it for a `flx worker` instead of running here."
)
@click.option("--full-refresh", is_flag=True, help="meltano run --full-refresh: ignore the saved state.")
@click.option("--dry-run", is_flag=True, help="meltano run --dry-run: validate and explain, run nothing.")
@click.option("--refresh-catalog", is_flag=True, help="meltano run --refresh-catalog: discover again.")
@click.option("--no-state-update", is_flag=True, help="meltano run --no-state-update: save no state.")
@click.option("--state-id-suffix", metavar="TEXT", help="meltano run --state-id-suffix TEXT.")
@click.option(
    "--state-strategy",
    type=click.Choice(["auto", "merge", "overwrite"]),
    help="meltano run --state-strategy.",
)
@click.pass_context
def run(
    ctx: click.Context,
    job_or_blocks: tuple[str, ...],
    retries: int | None,
    timeout: float | None,
    trigger: str,
    use_queue: bool,
    full_refresh: bool,
    dry_run: bool,
    refresh_catalog: bool,
    no_state_update: bool,
    state_id_suffix: str | None,
    state_strategy: str | None,
) -> None:
    """Run a Meltano job (or blocks) with retries, a timeout, no overlap, validations and alerts.

    Meltano's own options go after `--`: `flx run JOB -- --state-strategy merge`.
    """
    flags = {
        "--full-refresh": full_refresh,
        "--dry-run": dry_run,
        "--refresh-catalog": refresh_catalog,
        "--no-state-update": no_state_update,
    }
    valued = {"--state-id-suffix": state_id_suffix, "--state-strategy": state_strategy}
    options = _meltano_options(flags, valued, ctx.meta.get("meltano_args", ()))
    settings = load()
    require_project(settings, "flx run")
    unknown = settings.unknown_blocks(job_or_blocks)
    if unknown:
        raise FlxError(_unknown_job(unknown[0], settings), EXIT_USAGE)
    if use_queue:
        if retries is not None or timeout is not None or options:
            raise UsageMistake(
                "--retries, --timeout and meltano options apply to local runs; queued runs use the settings",
                ctx,
            )
        from flx.cli.schedule import queue_app
        from flx.service.queue import enqueue

        job = enqueue(queue_app(settings), job_or_blocks, trigger)
        console().print(f"queued {' '.join(job_or_blocks)} as job {job}")
        return
    pipeline = settings.pipeline(job_or_blocks)
    if options:
        update: dict[str, Any] = {"run_options": tuple(options)}
        if dry_run:
            update["validations"] = ()  # nothing was loaded: nothing to check
        pipeline = pipeline.model_copy(update=update)
        if dry_run:
            retries = 0
    sys.exit(_run_here(settings, pipeline, trigger, retries, timeout))


def _meltano_options(
    flags: dict[str, bool], valued: dict[str, str | None], after: Sequence[str]
) -> list[str]:
    """`meltano run`'s options in the order given: the flags set, the options with a value, then what
    came after `--`."""
    options = [flag for flag, given in flags.items() if given]
    options += [part for option, value in valued.items() if value for part in (option, value)]
    return [*options, *after]


def _unknown_job(name: str, settings: Any) -> str:
    jobs = sorted({*settings.jobs, *settings.pipelines})
    blocks = [*jobs, *(n for names in settings.plugins.values() for n in names)]
    close = difflib.get_close_matches(name, blocks, n=1, cutoff=0.8)
    where = settings.project_root / "meltano.yml"
    known = f"the jobs are {', '.join(jobs)}" if jobs else "it defines no jobs"
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"flx run: no job, pipeline or plugin named {name!r} in {where}: {hint}{known}"


def _run_here(settings: Any, pipeline: Any, trigger: str, retries: int | None, timeout: float | None) -> int:
    import signal
    from types import FrameType

    from flx.cli.views import status_text
    from flx.execution.runner import Runner

    with app(settings) as container:
        runner = container.resolve(Runner)

        def cancel(signum: int, _frame: FrameType | None) -> None:
            runner.cancel()
            # Ctrl-C in `flx run … | tee log` ends the reader too: a closed pipe must not stop the recording
            # (rich answers a broken pipe with SystemExit)
            with contextlib.suppress(OSError, SystemExit):
                err_console().print(f"flx: {signal.Signals(signum).name} received, stopping the run…")

        signal.signal(signal.SIGTERM, cancel)
        signal.signal(signal.SIGINT, cancel)
        outcome = runner.run(pipeline, trigger=trigger, retries=retries, timeout_seconds=timeout)
    line = f"{outcome.pipeline}: " + status_text(outcome.status.value).markup
    if pipeline.run_options:
        line += f" (meltano run {' '.join(pipeline.run_options)})"
    line += f" after {outcome.attempts} attempt(s) (execution {outcome.execution_id})"
    with contextlib.suppress(OSError, SystemExit):  # recorded already: a closed pipe changes nothing
        (console() if outcome.cli_exit_code == 0 else err_console()).print(line, highlight=False)
        if outcome.error:
            err_console().print(outcome.error, markup=False, highlight=False)
    return outcome.cli_exit_code


@main.command()
@click.option("--pipeline", help="Only this pipeline.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array, newest first.")
def history(pipeline: str | None, limit: int, as_json: bool) -> None:
    """Recent executions, newest first."""
    from flx.cli.history import pipeline_names, recent_executions

    settings = load()
    schema = settings.database.control_schema
    with reader(settings) as conn:
        rows = recent_executions(conn, schema, pipeline, limit)
        known = pipeline_names(conn, schema) if pipeline is not None and not rows else []
    if pipeline is not None and not rows:
        if pipeline not in known and pipeline not in {*settings.pipelines, *settings.jobs}:
            close = difflib.get_close_matches(pipeline, known, n=1, cutoff=0.8)
            hint = f"did you mean {close[0]!r}? " if close else ""
            listed = (
                f"the pipelines with history are {', '.join(known)}" if known else "no pipeline has run yet"
            )
            raise FlxError(f"flx history: no pipeline named {pipeline!r}: {hint}{listed}", EXIT_USAGE)
        if not as_json:
            err_console().print(f"{pipeline}: no executions yet", highlight=False)
    if as_json:
        click.echo(json.dumps([row.as_json() for row in rows], indent=2))
    elif rows or pipeline is None:
        from flx.cli.views import history_table

        console().print(history_table(rows, console().width))


@main.command()
@click.argument("execution")
def show(execution: str) -> None:
    """One execution: its facts, events, stream loads and validation results (id, id prefix or pipeline#N)."""
    from flx.cli.history import ExecutionNotFound, execution_detail
    from flx.cli.views import detail_view

    settings = load()
    with reader(settings) as conn:
        try:
            detail = execution_detail(conn, settings.database.control_schema, execution)
        except ExecutionNotFound as exc:
            raise FlxError(f"flx show: {exc}", EXIT_USAGE) from None
    console().print(detail_view(detail, console().width))


@main.command()
@click.option("--send-test", is_flag=True, help="Also send a test message to every alert channel.")
def check(send_test: bool) -> None:
    """Preflight: PostgreSQL, schedules, validations, Oracle sources, alert URLs, the Meltano project and each
    job's plugins; one ✓/✗ line each."""
    from flx.cli.preflight import preflight

    ok = True
    for result in preflight(send_test):
        ok = ok and result.ok
        mark = "[green]✓[/]" if result.ok else "[bold red]✗[/]"
        console().print(f"{mark} {result.name}: {result.detail}", highlight=False, soft_wrap=True)
    if not ok:
        sys.exit(EXIT_FAILED)


@main.group()
def db() -> None:
    """The control schema (Alembic migrations) and flx's database."""


def _migrate(direction: Literal["upgrade", "downgrade"], revision: str) -> None:
    """Move the control schema to `revision` and say where it is now."""
    from flx_core import migrate

    engine, schema = engine_and_schema()
    step = migrate.upgrade if direction == "upgrade" else migrate.downgrade
    try:
        step(engine, schema, revision)
        now = migrate.current_revision(engine, schema)
    finally:
        engine.dispose()
    console().print(f"control schema [bold]{schema}[/] at revision {now}")


@db.command()
@click.option("--revision", default="head", show_default=True)
def upgrade(revision: str) -> None:
    """Create or upgrade the control schema (idempotent)."""
    _migrate("upgrade", revision)


@db.command()
@click.option("--revision", default="base", show_default=True)
def downgrade(revision: str) -> None:
    """Downgrade the control schema (to base: drops every flx table)."""
    _migrate("downgrade", revision)


@db.command()
@click.option(
    "--older-than",
    "days",
    required=True,
    type=click.FloatRange(min=1),
    help="Days since a run ended; its events, log and quarantined lines go, its summary stays.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
def prune(days: float, dry_run: bool) -> None:
    """Delete old runs' events, logs, quarantined lines and schedule ticks; keep every run's summary."""
    from flx.cli.prune import prune as prune_history

    engine, schema = engine_and_schema()
    try:
        done = prune_history(engine, schema, days, dry_run=dry_run)
    finally:
        engine.dispose()
    verb = "would delete" if dry_run else "deleted"
    console().print(
        f"flx db prune: {verb} {done.events:,} events, {done.logs:,} log chunks,"
        f" {done.log_tails:,} log tails, {done.quarantined:,} quarantined lines and {done.ticks:,}"
        f" schedule ticks older than {days:g} days"
    )


@db.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
def psql(psql_args: tuple[str, ...]) -> None:
    """Open psql on flx's database (the embedded one too); extra arguments go to psql."""
    import os
    import shutil
    from pathlib import Path

    from flx_core.embedded import embedded_bin_dir
    from flx_core.settings import libpq_conninfo

    settings = load()
    url = database(settings).url()
    bundled = str(Path(embedded_bin_dir()) / "psql")
    # The embedded server's own psql matches its major version; for another server, the system's.
    executable = bundled if not settings.database.is_configured else shutil.which("psql") or bundled
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)  # the environment, not argv: argv is visible in `ps`
    conninfo = libpq_conninfo(url._replace(password=None))
    os.execvpe(executable, [executable, conninfo, *psql_args], env)


@db.command()
def current() -> None:
    """Print the control schema's revision and the newest one this flx knows."""
    from flx_core import migrate

    engine, schema = engine_and_schema()
    revision = migrate.current_revision(engine, schema)
    head = migrate.head_revision()
    state = "up to date" if revision == head else "behind: run `flx db upgrade`"
    console().print(f"control schema [bold]{schema}[/]: {revision or 'empty'} (head {head}, {state})")
    engine.dispose()


@db.command()
def url() -> None:
    """Print a URL for psql, dbt, DBeaver or a BI tool (no password: they ask, or read PGPASSWORD)."""
    settings = load()
    resolved = database(settings)
    if settings.database.is_configured:
        click.echo(resolved.url()._replace(drivername="postgresql", password=None).render_as_string())
        return
    from flx_core.embedded import running_server

    server = running_server()
    name = resolved.url().database
    if server is not None and server.tcp_url:
        click.echo(f"{server.tcp_url}/{name}")
        return
    socket_dir = server.socket_dir if server is not None else ""
    click.echo(f"postgresql://postgres@/{name}?host={socket_dir}&port={server.port if server else 5432}")
    err_console().print(
        "This embedded server listens on its socket only (an older flx started it): `flx db stop`, and "
        "the next flx command starts it on a loopback TCP port.",
        highlight=False,
    )


@db.command()
@click.option("--force", is_flag=True, help="Stop it even while other sessions are connected.")
def stop(force: bool) -> None:
    """Stop the embedded PostgreSQL of this project (the next flx command starts it again)."""
    from flx_core.embedded import flx_home, running_server, stop_server

    settings = load()
    if settings.database.is_configured:
        from flx_core.settings import describe

        raise FlxError(
            f"flx db stop: flx uses the PostgreSQL at {describe(settings.database.url())}, not an embedded "
            "one: there is nothing to stop",
            EXIT_USAGE,
        )
    pgdata = flx_home() / "pgdata"
    server = running_server(pgdata)
    if server is None:
        console().print(f"the embedded PostgreSQL in {pgdata} is not running", highlight=False)
        return
    others = _other_sessions(server)
    if others and not force:
        raise FlxError(
            f"flx db stop: {others} session(s) are connected to the embedded PostgreSQL in {pgdata} "
            "(a run, psql, a BI tool?): end them, or stop it anyway with --force",
            EXIT_USAGE,
        )
    stop_server(pgdata)
    console().print(f"stopped the embedded PostgreSQL in {pgdata} (pid {server.pid})", highlight=False)


def _other_sessions(server: Any) -> int:
    import psycopg

    host = str(server.socket_dir) if server.socket_dir else server.hostname
    with psycopg.connect(host=host, port=server.port, user="postgres", dbname="postgres") as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


class _LazyCommand(click.Command):
    """A command defined in another module, loaded only when it runs or its help is shown."""

    def __init__(self, name: str, module: str, attribute: str, short_help: str) -> None:
        super().__init__(name, short_help=short_help)
        self._where = (module, attribute)

    def _load(self) -> click.Command:
        import importlib

        module, attribute = self._where
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        return self._load().make_context(info_name, args, parent, **extra)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return self._load().get_params(ctx)


for _name, _module, _attribute, _help in (
    ("demo", "flx.cli.demo", "demo", "The `make demo` warehouse source."),
    ("serve", "flx.cli.schedule", "serve", "Run scheduled pipelines until SIGTERM."),
    ("schedule", "flx.cli.schedule", "schedule", "Scheduled pipelines."),
    ("worker", "flx.cli.schedule", "worker", "Run queued executions until SIGTERM."),
    ("ui", "flx.cli.ui", "ui", "Web pages of the run history, and Prometheus /metrics."),
    ("logs", "flx.cli.logs", "logs", "An execution's complete output; --follow while it runs."),
    ("cancel", "flx.cli.logs", "cancel", "Stop a running execution, from any machine."),
):
    main.add_command(_LazyCommand(_name, _module, _attribute, _help))

if __name__ == "__main__":
    sys.exit(main())
