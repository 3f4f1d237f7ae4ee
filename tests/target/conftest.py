"""Running target-flx in-process and as a real CLI against the test database."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import URL

from flx_core.settings import libpq_conninfo
from target_flx import copybin
from target_flx.target import TargetFlx


@pytest.fixture(params=["c", "python"])
def encoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test with the C encoder and again with the Python reference (in-process and in CLIs)."""
    if request.param == "c" and not copybin.extension_built():
        pytest.skip("the C extension was not built")
    python = request.param == "python"
    monkeypatch.setenv("TARGET_FLX_ENCODER", "python" if python else "c")
    copybin.use_python(python)
    yield request.param
    copybin.use_python(False)


@dataclass
class Loaded:
    states: list[Any]
    stdout: str


@pytest.fixture
def target_schema(database_url: URL, fresh_schema_name: str) -> Iterator[str]:
    yield fresh_schema_name
    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{fresh_schema_name}" CASCADE')


@pytest.fixture
def target_config(db_config: dict[str, str], target_schema: str) -> dict[str, Any]:
    return {**db_config, "default_target_schema": target_schema}


@pytest.fixture
def load(target_config: dict[str, Any]) -> Callable[..., Loaded]:
    """Run the target in-process on a Singer text; returns the STATE messages it emitted."""

    def run(text: str, **overrides: Any) -> Loaded:
        target = TargetFlx(config={**target_config, **overrides}, validate_config=True)
        out = io.StringIO()
        with redirect_stdout(out):
            target.listen(io.StringIO(text))
        lines = [line for line in out.getvalue().splitlines() if line.strip()]
        return Loaded([json.loads(line) for line in lines], out.getvalue())

    return run


@pytest.fixture
def query(database_url: URL) -> Callable[..., list[tuple[Any, ...]]]:
    def run(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(libpq_conninfo(database_url)) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    return run


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(target_config: dict[str, Any], tmp_path: Path) -> Callable[..., CliResult]:
    """Run the real `target-flx` executable, as Meltano would."""

    def run(text: str, env: dict[str, str] | None = None, **overrides: Any) -> CliResult:
        config = tmp_path / "config.json"
        config.write_text(json.dumps({**target_config, **overrides}))
        exe = Path(sys.executable).with_name("target-flx")
        proc = subprocess.run(
            [str(exe), "--config", str(config)],
            input=text,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "FLX_DEBUG": "0", **(env or {})},
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture
def cli_process(
    target_config: dict[str, Any], tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """A running `target-flx` with pipes, for tests that read its output while writing its input."""
    started: list[subprocess.Popen[str]] = []

    def start(**overrides: Any) -> subprocess.Popen[str]:
        config = tmp_path / "config.json"
        config.write_text(json.dumps({**target_config, **overrides}))
        exe = Path(sys.executable).with_name("target-flx")
        proc = subprocess.Popen(
            [str(exe), "--config", str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
