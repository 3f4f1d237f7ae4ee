"""A throw-away database per loader run on the benchmark server, and the checks made on it afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from shapes import Shape

from target_flx.types import column_type

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Target:
    """Where one loader run writes: its own database, schema `bench`."""

    host: str
    port: int
    user: str
    password: str | None
    database: str
    schema: str = "bench"

    def conninfo(self) -> str:
        return make_conninfo(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=self.database
        )


def _server(url: str) -> dict[str, str]:
    scheme, sep, rest = url.partition("://")
    if sep and "+" in scheme:  # SQLAlchemy-style postgresql+driver://
        url = scheme.split("+", 1)[0] + sep + rest
    params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    params.setdefault("host", "127.0.0.1")
    params.setdefault("port", "5432")
    params.setdefault("user", "postgres")
    params.setdefault("dbname", "postgres")
    return params


@contextmanager
def fresh_database(url: str, label: str) -> Iterator[Target]:
    """CREATE DATABASE bench_<label>_<random>; dropped (WITH FORCE) however the run ends."""
    server = _server(url)
    name = f"bench_{label.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    admin = make_conninfo(**server)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield Target(server["host"], int(server["port"]), server["user"], server.get("password"), name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def row_count(target: Target, table: str) -> int | None:
    """Rows in schema.table, or None when the loader never created it."""
    with psycopg.connect(target.conninfo()) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f'"{target.schema}"."{table}"',)).fetchone()
        if exists is None or exists[0] is None:
            return None
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(target.schema), sql.Identifier(table)
        )
        row = conn.execute(query).fetchone()
        return int(row[0]) if row else None


def create_table_like_flx(target: Target, shape: Shape) -> None:
    """The table target-flx would create (same column types, same key), for the `psql \\copy` floor."""
    columns = [
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(column_type(prop).pg_type))
        for name, prop in shape.schema["properties"].items()
    ]
    columns.append(sql.SQL("PRIMARY KEY ({})").format(sql.Identifier(shape.key)))
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(target.schema)))
        conn.execute(
            sql.SQL("CREATE TABLE {}.{} ({})").format(
                sql.Identifier(target.schema), sql.Identifier(shape.stream), sql.SQL(", ").join(columns)
            )
        )
