"""A real PostgreSQL for every test run: never a mock.

`FLX_TEST_DATABASE_URL` if set, else 127.0.0.1:5432 (user postgres, database test) when reachable, else the
embedded pgserver (forced with `FLX_TEST_EMBEDDED=1`). Each pytest run creates its own database there and
drops it at the end, so parallel runs and leftovers from a killed run never collide.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url

from flx_core.database import make_engine
from flx_core.settings import DatabaseSettings, libpq_conninfo


def _local_server_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def _server_url(tmp_root: Path) -> URL:
    if url := os.environ.get("FLX_TEST_DATABASE_URL"):
        return make_url(url).set(drivername="postgresql+psycopg")
    if os.environ.get("FLX_TEST_EMBEDDED") != "1" and _local_server_reachable():
        return make_url("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    from flx_core.embedded import embedded_url

    os.environ.setdefault("FLX_HOME", str(tmp_root / "flx-home"))
    return embedded_url("postgres")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[URL]:
    """A fresh, empty database for this test session."""
    server = _server_url(Path(os.environ.get("FLX_TEST_HOME", tmp_path_factory.mktemp("server"))))
    name = f"flx_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_conninfo(server), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.set(database=name)
    finally:
        with psycopg.connect(libpq_conninfo(server), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def db_settings(database_url: URL) -> DatabaseSettings:
    """Plugin-style settings pointing at the test database."""
    return DatabaseSettings(sqlalchemy_url=database_url.render_as_string(hide_password=False))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def db_config(db_settings: DatabaseSettings) -> dict[str, str]:
    """The same as a plugin config dict, as Meltano would pass it."""
    assert db_settings.sqlalchemy_url is not None
    return {"sqlalchemy_url": db_settings.sqlalchemy_url.get_secret_value()}


@pytest.fixture(scope="session")
def engine(db_settings: DatabaseSettings) -> Iterator[Engine]:
    eng = make_engine(db_settings)
    yield eng
    eng.dispose()


@pytest.fixture
def fresh_schema_name() -> str:
    """A unique schema name, so tests that need an empty schema don't step on each other."""
    return f"t_{uuid.uuid4().hex[:10]}"
