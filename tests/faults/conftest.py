"""Fixtures for the fault suite: a private PostgreSQL cluster (restarted and crashed by the tests, so never
the shared server) and, for bad-input cases, a fresh schema on the shared test database."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import URL

from flx_core.settings import libpq_conninfo
from tests.faults.harness import TARGET_EXE, Cluster, Lab, find_pg_bin, private_cluster, run_target

SEED = int(os.environ.get("FLX_FAULT_SEED") or random.SystemRandom().randrange(2**32))


def pytest_report_header() -> str:
    return f"fault suite seed: {SEED} (rerun with FLX_FAULT_SEED={SEED})"


@pytest.fixture(scope="session")
def fault_seed() -> int:
    return SEED


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A private cluster with the control schema already in place, so every trial's first run is a load."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found (set FLX_PG_BIN)")
    if not TARGET_EXE.exists():
        pytest.fail(f"{TARGET_EXE} not found: install the project first")
    with private_cluster(bin_dir) as server:
        warmup = run_target(
            server.target_config("public"),
            tmp_path_factory.mktemp("warmup"),
            b"",
            conninfo=None,
            paced=False,
        )
        if warmup.returncode != 0:
            pytest.fail(
                f"target-flx failed on empty input (exit {warmup.returncode}):\n{warmup.stderr[-3000:]}"
            )
        yield server


@pytest.fixture
def lab(cluster: Cluster, tmp_path: Path) -> Lab:
    return Lab(cluster, tmp_path)


@pytest.fixture
def shared_schema(database_url: URL, fresh_schema_name: str) -> Iterator[str]:
    """A fresh schema on the shared test database, dropped afterwards."""
    yield fresh_schema_name
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{fresh_schema_name}" CASCADE')


@pytest.fixture
def shared_conninfo(database_url: URL) -> str:
    return libpq_conninfo(database_url)


@pytest.fixture
def shared_config(db_config: dict[str, str], shared_schema: str) -> dict[str, Any]:
    return {**db_config, "default_target_schema": shared_schema, "batch_size_rows": 50}
