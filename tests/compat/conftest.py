"""Fixtures of the compatibility suite: the reference loader and real taps in their own venvs, and the
target fixtures of tests/target (target-flx in-process and as a CLI)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import URL

from bench.anchors import Anchor, ensure
from flx_core.settings import libpq_conninfo
from tests.compat.taps import REFERENCE
from tests.target.conftest import cli, load, query, target_config, target_schema  # noqa: F401


def installed(anchor: Anchor) -> Path:
    """The anchor's executable, installing its venv on first use; the test is skipped (saying why) when
    PyPI cannot give it here."""
    try:
        return ensure(anchor, log=False)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"{anchor.name} cannot be installed here: {str(exc).splitlines()[0]}")


@pytest.fixture(scope="session")
def reference_command() -> Path:
    return installed(REFERENCE)


@pytest.fixture
def reference_load(
    reference_command: Path, database_url: URL, tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run MeltanoLabs target-postgres 0.8.1 on a Singer text (or file) into `schema`."""

    def run(text: str | Path, schema: str, **config: Any) -> subprocess.CompletedProcess[str]:
        path = tmp_path / f"reference-{schema}.json"
        url = database_url.render_as_string(hide_password=False)
        path.write_text(json.dumps({"sqlalchemy_url": url, "default_target_schema": schema, **config}))
        data = text.read_text() if isinstance(text, Path) else text
        proc = subprocess.run(
            [str(reference_command), "--config", str(path)],
            input=data,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "TARGET_POSTGRES_LOG_LEVEL": "WARNING"},
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    return run


@pytest.fixture
def drop_schemas(database_url: URL) -> Iterator[list[str]]:
    """Schemas a test creates beside `target_schema`, dropped afterwards."""
    names: list[str] = []
    yield names
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
