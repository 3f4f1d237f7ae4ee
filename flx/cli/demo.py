"""`flx demo …`: the `make demo` warehouse source and the report at its end."""

from __future__ import annotations

import shlex

import click
from rich.table import Table
from sqlalchemy import select, text
from sqlalchemy.engine import URL

from flx.cli.context import console, database, engine_and_schema, load
from flx.cli.demo_warehouse import seed as seed_demo
from flx_core.models import StreamLoad
from flx_core.settings import describe


@click.group()
def demo() -> None:
    """The `make demo` warehouse source (schema `warehouse` in flx's own database)."""


@demo.command("seed")
def demo_seed() -> None:
    """Create the demo source on the first call; change and add orders on every later call."""
    engine, _schema = engine_and_schema()
    done = seed_demo(engine)
    what = (
        "created"
        if done.round == 1
        else f"round {done.round}: {done.changed_orders:,} orders changed, new added"
    )
    console().print(
        f"demo source {what}: {done.orders:,} orders, {done.lines:,} lines, {done.allocations:,} allocations"
    )


@demo.command("source-env")
def demo_source_env() -> None:
    """Shell `export` lines telling tap-warehouse (and the row-count check) where the demo source is."""
    url = database().url()
    host = url.host or str(url.query.get("host", "/var/run/postgresql"))
    values = {
        "FLX_DEMO_HOST": host,
        "FLX_DEMO_PORT": str(url.port or 5432),
        "FLX_DEMO_USER": url.username or "postgres",
        # Meltano drops empty settings and tap-postgres insists on one; trust auth ignores it.
        "FLX_DEMO_PASSWORD": url.password or "unused",
        "FLX_DEMO_DATABASE": url.database or "postgres",
        "FLX_DEMO_SOURCE_URL": url.render_as_string(hide_password=False),
    }
    for name, value in values.items():
        click.echo(f"export {name}={shlex.quote(str(value))}")


def _reachable_url(url: URL) -> str:
    """The URL other tools can use: the embedded server's loopback one, else the configured one."""
    from flx_core.embedded import running_server

    if not load().database.is_configured and (server := running_server()) and server.tcp_url:
        return f"{server.tcp_url}/{url.database}"
    return describe(url)


@demo.command("report")
def demo_report() -> None:
    """Where the demo's data landed, how much, and how to query it."""
    engine, _schema = engine_and_schema()
    table = Table(title="demo data in analytics", header_style="bold")
    for column in ("table", "rows", "last load: inserted", "updated"):
        table.add_column(column, justify="left" if column == "table" else "right")
    with engine.connect() as conn:
        for name in ("order_headers", "order_lines", "allocations"):
            exists = conn.execute(text("SELECT to_regclass(:t)"), {"t": f"analytics.{name}"}).scalar()
            if exists is None:
                table.add_row(f"analytics.{name}", "not loaded", "-", "-")
                continue
            rows = conn.execute(text(f"SELECT count(*) FROM analytics.{name}")).scalar_one()
            last = conn.execute(
                select(StreamLoad.rows_inserted, StreamLoad.rows_updated)
                .where(StreamLoad.schema_name == "analytics", StreamLoad.table_name == name)
                .order_by(StreamLoad.started_at.desc())
                .limit(1)
            ).one_or_none()
            inserted, updated = last if last else (0, 0)
            table.add_row(f"analytics.{name}", f"{rows:,}", f"{inserted:,}", f"{updated:,}")
    console().print(table)
    console().print(f"database: {_reachable_url(engine.url)}", highlight=False)
    console().print(
        "query it:  [bold].venv/bin/flx db psql -c 'SELECT status, count(*) FROM analytics.order_headers "
        "GROUP BY 1'[/]",
        highlight=False,
    )
    console().print(
        "from psql, dbt or a BI tool: [bold].venv/bin/flx db url[/] prints the URL", highlight=False
    )
