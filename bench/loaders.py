"""The loaders compared, with the config each gets (in its own setting names) and how it is started."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anchors import ANCHORS, ensure
from database import Target

Config = dict[str, Any]


def _flx(target: Target) -> Config:
    config: Config = {
        "host": target.host,
        "port": target.port,
        "user": target.user,
        "database": target.database,
        "default_target_schema": target.schema,
    }
    if target.password:
        config["password"] = target.password
    return config


def _meltanolabs(target: Target) -> Config:
    return _flx(target) | {"password": target.password or ""}


def _pipelinewise(target: Target) -> Config:
    # PipelineWise requires a password key even with trust authentication, where any value is accepted.
    return {
        "host": target.host,
        "port": target.port,
        "user": target.user,
        "password": target.password or "unused",
        "dbname": target.database,
        "default_target_schema": target.schema,
    }


@dataclass(frozen=True)
class Loader:
    name: str
    description: str
    config: Callable[[Target], Config] | None  # None: not a Singer target (psql)
    anchor: str | None = None  # the bench/.venvs venv it runs from; None: flx's own venv
    preload: bool = False  # load the same data once, untimed, before the timed run
    extra: Config = field(default_factory=dict)

    @property
    def is_anchor(self) -> bool:
        return self.anchor is not None

    def command(self) -> list[str]:
        if self.anchor is not None:
            return [str(ensure(ANCHORS[self.anchor]))]
        candidate = Path(sys.executable).parent / "target-flx"
        found = str(candidate) if candidate.exists() else shutil.which("target-flx")
        if found is None:
            raise RuntimeError("target-flx not found next to this Python nor on PATH")
        return [found]

    def full_config(self, target: Target) -> Config:
        assert self.config is not None
        return self.config(target) | self.extra


LOADERS: list[Loader] = [
    Loader("flx-append", "target-flx, load_method append-only", _flx, extra={"load_method": "append-only"}),
    Loader("flx-upsert", "target-flx, defaults (upsert on key, empty table)", _flx),
    Loader(
        "flx-upsert-existing", "target-flx upsert into a table already holding the rows", _flx, preload=True
    ),
    Loader("meltanolabs", "MeltanoLabs target-postgres 0.8.1, defaults", _meltanolabs, anchor="meltanolabs"),
    Loader(
        "meltanolabs-tuned",
        "MeltanoLabs 0.8.1, use_copy, validate_records off, batch 100k",
        _meltanolabs,
        anchor="meltanolabs",
        extra={"use_copy": True, "validate_records": False, "batch_size_rows": 100_000},
    ),
    Loader(
        "pipelinewise", "pipelinewise-target-postgres 2.1.2, defaults", _pipelinewise, anchor="pipelinewise"
    ),
    Loader("psql", "psql \\copy of the CSV into a pre-created table (floor)", None),
]
BASELINE_ANCHOR = "meltanolabs"
BASELINE_FLX = "flx-upsert"


def select(only: str | None) -> list[Loader]:
    """`--only flx,meltanolabs`: a loader's exact name picks it alone, else a prefix picks its family
    (flx → all flx-*; meltanolabs is a name, so meltanolabs-tuned needs its own)."""
    if not only:
        return list(LOADERS)
    names = [loader.name for loader in LOADERS]
    wanted: set[str] = set()
    for token in (t.strip() for t in only.split(",") if t.strip()):
        matches = [token] if token in names else [n for n in names if n.startswith(token + "-")]
        if not matches:
            raise ValueError(f"unknown loader {token!r}; known: {names}")
        wanted.update(matches)
    return [loader for loader in LOADERS if loader.name in wanted]


def psql_command(
    target: Target, table: str, columns: list[str], csv: Path
) -> tuple[list[str], dict[str, str]]:
    """`psql -c "\\copy …"`; the password goes in PGPASSWORD, never on the command line."""
    psql = shutil.which("psql")
    if psql is None:
        raise RuntimeError("psql not found on PATH")
    quoted_columns = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    path = str(csv).replace("'", "''")
    copy = (
        f'\\copy "{target.schema}"."{table}" ({quoted_columns}) '
        f"FROM '{path}' WITH (FORMAT csv, HEADER true)"
    )
    env = dict(os.environ)
    if target.password:
        env["PGPASSWORD"] = target.password
    conn = f"host={target.host} port={target.port} user={target.user} dbname={target.database}"
    return [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conn, "-c", copy], env
