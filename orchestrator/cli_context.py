"""What every `flx` command shares: consoles readable outside a terminal, settings, the container."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from sqlalchemy import Engine

from flx_core.database import make_engine, resolve
from flx_core.settings import SettingsError
from orchestrator.alerts.channels import AlertConfigError
from orchestrator.config import FlxSettings, load_settings
from orchestrator.container import FlxContainer, build_container
from orchestrator.oracle.errors import OracleConfigError
from orchestrator.runner import Runner

# Tables stay readable in logs and `make` output too, where rich would otherwise assume 80 columns.
_WIDTH = None if sys.stdout.isatty() else max(shutil.get_terminal_size().columns, 130)
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)


def load() -> FlxSettings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def app(settings: FlxSettings | None = None) -> Iterator[FlxContainer]:
    """The wired application; every start also fails executions whose runner died (stale heartbeat)."""
    try:
        container = build_container(settings or load())
    except (SettingsError, AlertConfigError, OracleConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    with container:
        container.resolve(Runner).recover()
        yield container


def engine_and_schema() -> tuple[Engine, str]:
    """Just the database, for commands that need no runner (schema management, the demo)."""
    try:
        settings = resolve(load().database)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    return make_engine(settings), settings.control_schema
