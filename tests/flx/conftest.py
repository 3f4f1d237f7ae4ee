"""Fixtures of the flx tests: a throwaway Meltano project on the session's test database."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.flx.meltano_project import MeltanoProject, make_project


@pytest.fixture
def project(tmp_path: Path, database_url: URL) -> MeltanoProject:
    """The project of `meltano_project.py` (its own target and control schemas); tests may override it."""
    url = database_url.render_as_string(hide_password=False)
    return make_project(tmp_path / "project", url, f"t_{uuid.uuid4().hex[:8]}")
