"""Fixtures of the flx tests: a throwaway Meltano project on the session's test database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine

from flx_core.database import make_engine
from flx_core.migrate import ensure_schema
from flx_core.settings import DatabaseSettings
from tests.flx.meltano_project import MeltanoProject, make_project


@pytest.fixture
def project(tmp_path: Path, database_url: URL) -> MeltanoProject:
    """The project of `meltano_project.py` (its own target and control schemas); tests may override it."""
    url = database_url.render_as_string(hide_password=False)
    return make_project(tmp_path / "project", url, f"t_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def own_control(db_settings: DatabaseSettings) -> Iterator[Engine]:
    """A control schema of the test module's own: the executions its tests leave running must not meet
    another test's stale-run recovery in a shared one."""
    schema = f"ctl_{uuid.uuid4().hex[:8]}"
    engine = make_engine(db_settings.model_copy(update={"control_schema": schema}))
    ensure_schema(engine, schema)
    yield engine
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()
