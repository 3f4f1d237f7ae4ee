"""What every `flx` command shares: consoles that read well outside a terminal, settings, database, container.

Imports are made where they are needed: `flx history` must not pay for the runner, Alembic or apprise.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

from flx.cli.errors import EXIT_USAGE, FlxError

if TYPE_CHECKING:
    import psycopg
    from rich.console import Console
    from sqlalchemy import Engine

    from flx.config import FlxSettings
    from flx.container import FlxContainer
    from flx_core.settings import DatabaseSettings


def _width() -> int | None:
    """A terminal's own width; elsewhere `COLUMNS`, else wide enough for tables in logs and `make` output."""
    if sys.stdout.isatty():
        return None
    if (columns := os.environ.get("COLUMNS", "")).isdigit():
        return int(columns)
    return max(shutil.get_terminal_size().columns, 130)


@cache
def console() -> Console:
    from rich.console import Console

    return Console(width=_width())


@cache
def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, width=_width())


# Where the database of this command is, for error messages: set once it is resolved.
database_where: list[str] = []


@cache
def load() -> FlxSettings:
    from flx.config import load_settings

    return load_settings()


def database(settings: FlxSettings | None = None) -> DatabaseSettings:
    """The resolved database settings (the embedded server started when nothing is configured)."""
    from flx_core.database import resolve

    settings = settings or load()
    resolved = resolve(settings.database)
    if not database_where:
        if settings.database.is_configured:
            source = " (FLX_DATABASE_URL)" if os.environ.get("FLX_DATABASE_URL") else ""
            database_where.append(resolved.where() + source)
        else:
            from flx_core.embedded import flx_home

            database_where.append(f"{resolved.where()} (the embedded one in {flx_home()})")
    return resolved


def require_project(settings: FlxSettings, command: str) -> None:
    if settings.project_root is None:
        raise FlxError(
            f"{command}: no meltano.yml in {os.getcwd()} or any folder above it: "
            "run it inside a Meltano project (or set MELTANO_PROJECT_ROOT)",
            EXIT_USAGE,
        )


@contextmanager
def app(settings: FlxSettings | None = None) -> Iterator[FlxContainer]:
    """The wired application; every start also fails executions whose runner died (stale heartbeat)."""
    from flx.alerts.urls import ENV_VAR, unset_variables
    from flx.container import build_container
    from flx.execution.runner import Runner

    settings = settings or load()
    database(settings)
    file = settings.project_root / "meltano.yml" if settings.project_root else "the settings"
    for where, urls in alert_url_lists(settings):
        for variable in unset_variables(urls):
            raise FlxError(
                f"{where} in {file}: ${variable} is not set: export {variable}, or remove it from {where}",
                EXIT_USAGE,
            )
    from flx.alerts.channels import AlertConfigError

    try:
        container = build_container(settings)
    except AlertConfigError as exc:
        raise FlxError(f"alert_urls in {file} or {ENV_VAR}: {exc}", EXIT_USAGE) from exc
    with container:
        container.resolve(Runner).recover()
        yield container


def alert_url_lists(settings: FlxSettings) -> list[tuple[str, tuple[str, ...]]]:
    """Every list of alert URLs in the settings, with where it is written."""
    lists = [("alert_urls", settings.alert_urls)]
    lists += [(f"pipelines.{name}.alert_urls", p.alert_urls) for name, p in settings.pipelines.items()]
    return lists


@contextmanager
def reader(settings: FlxSettings | None = None) -> Iterator[psycopg.Connection[Any]]:
    """A connection for reading history (psycopg, autocommit, times in UTC).

    The runner, Alembic and the alert channels are loaded only when needed: when the control schema is
    missing or behind, or an active execution is overdue for a heartbeat, the whole application starts
    first, as for any other command, and upgrades or recovers.
    """
    import psycopg

    settings = settings or load()
    with psycopg.connect(conninfo(database(settings)), autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        if not _current_and_quiet(conn, settings):
            with app(settings):
                pass
        yield conn


def conninfo(settings: DatabaseSettings) -> str:
    """libpq's connection string for resolved settings."""
    from psycopg.conninfo import make_conninfo

    e = settings.endpoint()
    return make_conninfo(
        host=e.host, port=e.port or 5432, user=e.user, password=e.password, dbname=e.database, **e.query
    )


def _current_and_quiet(conn: psycopg.Connection[Any], settings: FlxSettings) -> bool:
    import psycopg
    from psycopg import sql

    from flx_core.revision import HEAD

    schema = sql.Identifier(settings.database.control_schema)
    # Below stale-run recovery's smallest window: a healthy runner heartbeats every interval.
    overdue = min(settings.stale_after_seconds, 2 * settings.heartbeat_interval_seconds)
    try:
        row = conn.execute(sql.SQL("SELECT version_num FROM {}.alembic_version").format(schema)).fetchone()
    except psycopg.errors.UndefinedTable:  # no control schema yet
        return False
    if row is None or row[0] != HEAD:
        return False
    stale = conn.execute(
        sql.SQL(
            "SELECT EXISTS (SELECT 1 FROM {}.executions WHERE status IN ('pending', 'running', 'retrying') "
            "AND coalesce(heartbeat_at, created_at) < now() - make_interval(secs => %s))"
        ).format(schema),
        (overdue,),
    ).fetchone()
    return not (stale and stale[0])


def engine_and_schema() -> tuple[Engine, str]:
    """Just the database, for commands that need no runner (schema management, the demo)."""
    from flx_core.database import make_engine

    settings = database()
    return make_engine(settings), settings.control_schema
