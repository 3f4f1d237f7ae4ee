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
from typing import TYPE_CHECKING

from orchestrator.cli_errors import EXIT_USAGE, FlxError

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy import Engine

    from flx_core.settings import DatabaseSettings
    from orchestrator.config import FlxSettings
    from orchestrator.container import FlxContainer


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
    from orchestrator.config import load_settings

    return load_settings()


def database(settings: FlxSettings | None = None) -> DatabaseSettings:
    """The resolved database settings (the embedded server started when nothing is configured)."""
    from flx_core.database import resolve
    from flx_core.settings import describe

    settings = settings or load()
    resolved = resolve(settings.database)
    if not database_where:
        if settings.database.is_configured:
            source = " (FLX_DATABASE_URL)" if os.environ.get("FLX_DATABASE_URL") else ""
            database_where.append(describe(resolved.url()) + source)
        else:
            from flx_core.embedded import flx_home

            database_where.append(f"{describe(resolved.url())} (the embedded one in {flx_home()})")
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
    from orchestrator.alerts.urls import ENV_VAR, unset_variables
    from orchestrator.container import build_container
    from orchestrator.runner import Runner

    settings = settings or load()
    database(settings)
    file = settings.project_root / "meltano.yml" if settings.project_root else "the settings"
    for where, urls in alert_url_lists(settings):
        for variable in unset_variables(urls):
            raise FlxError(
                f"{where} in {file}: ${variable} is not set: export {variable}, or remove it from {where}",
                EXIT_USAGE,
            )
    from orchestrator.alerts.channels import AlertConfigError

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
def reader(settings: FlxSettings | None = None) -> Iterator[Engine]:
    """An engine for reading history, without the runner, Alembic or the alert channels when they are not
    needed: when the control schema is current and no active execution is overdue for a heartbeat.
    Otherwise the whole application starts, as for any other command, and upgrades or recovers first.
    """
    from flx_core.database import make_engine

    settings = settings or load()
    resolved = database(settings)
    engine = make_engine(resolved, pool_size=1)
    try:
        if _current_and_quiet(engine, settings):
            yield engine
            return
    finally:
        engine.dispose()
    with app(settings) as container:
        from sqlalchemy import Engine

        yield container.resolve(Engine)


def _current_and_quiet(engine: Engine, settings: FlxSettings) -> bool:
    from sqlalchemy import text
    from sqlalchemy.exc import ProgrammingError

    from flx_core.revision import HEAD

    schema = settings.database.control_schema
    # Below stale-run recovery's smallest window: a healthy runner heartbeats every interval.
    overdue = min(settings.stale_after_seconds, 2 * settings.heartbeat_interval_seconds)
    with engine.connect() as conn:
        try:
            revision = conn.execute(text(f'SELECT version_num FROM "{schema}".alembic_version')).scalar()
        except ProgrammingError:  # no control schema yet
            return False
        if revision != HEAD:
            return False
        stale = conn.execute(
            text(
                f'SELECT EXISTS (SELECT 1 FROM "{schema}".executions '
                "WHERE status IN ('pending', 'running', 'retrying') "
                "AND coalesce(heartbeat_at, created_at) < now() - make_interval(secs => :overdue))"
            ),
            {"overdue": overdue},
        ).scalar()
    return not stale


def engine_and_schema() -> tuple[Engine, str]:
    """Just the database, for commands that need no runner (schema management, the demo)."""
    from flx_core.database import make_engine

    settings = database()
    return make_engine(settings), settings.control_schema
