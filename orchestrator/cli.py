"""The `flx` command line."""

from __future__ import annotations

import logging
import sys

import click
from rich.console import Console
from sqlalchemy import Engine

from flx_core import migrate
from flx_core.database import make_engine, resolve
from flx_core.settings import SettingsError
from orchestrator.db_settings import database_settings

console = Console()


@click.group()
@click.option("--log-level", default="info", show_default=True, help="debug, info, warning, error")
def main(log_level: str) -> None:
    """flx: reliable Meltano ELT runs with history, validations and alerts."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.group()
def db() -> None:
    """Manage the control schema (Alembic migrations)."""


def _engine_and_schema() -> tuple[Engine, str]:
    try:
        settings = resolve(database_settings())
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    return make_engine(settings), settings.control_schema


@db.command()
@click.option("--revision", default="head", show_default=True)
def upgrade(revision: str) -> None:
    """Create or upgrade the control schema (idempotent)."""
    engine, schema = _engine_and_schema()
    migrate.upgrade(engine, schema, revision)
    console.print(f"control schema [bold]{schema}[/] at revision {migrate.current_revision(engine, schema)}")


@db.command()
@click.option("--revision", default="base", show_default=True)
def downgrade(revision: str) -> None:
    """Downgrade the control schema (to base: drops every flx table)."""
    engine, schema = _engine_and_schema()
    migrate.downgrade(engine, schema, revision)
    console.print(f"control schema [bold]{schema}[/] at revision {migrate.current_revision(engine, schema)}")


@db.command()
def current() -> None:
    """Print the control schema's revision and the newest one this flx knows."""
    engine, schema = _engine_and_schema()
    revision = migrate.current_revision(engine, schema)
    head = migrate.head_revision()
    state = "up to date" if revision == head else "behind: run `flx db upgrade`"
    console.print(f"control schema [bold]{schema}[/]: {revision or 'empty'} (head {head}, {state})")


if __name__ == "__main__":
    sys.exit(main())
