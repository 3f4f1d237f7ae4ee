"""The embedded PostgreSQL used when nothing is configured, so `meltano run` works on a fresh machine.

pgserver keeps one server per data directory and serialises start-up with an inter-process lock, so
two plugins of one `meltano run` share the server instead of racing over the data directory. The server
is left running when the process exits (the next plugin in the pipeline reuses it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from flx_core.settings import SettingsError, libpq_conninfo

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "flx"
_started: dict[tuple[Path, str], URL] = {}
# Set once this process has said which embedded server it uses; inherited by the processes it starts.
ANNOUNCED_VAR = "FLX_EMBEDDED_ANNOUNCED"


class NoProject(SettingsError):
    """Nothing says where the embedded server's data belongs: no FLX_HOME and no Meltano project."""


def project_root(start: Path | None = None) -> Path | None:
    """The Meltano project: `MELTANO_PROJECT_ROOT`, else the nearest folder upwards with a meltano.yml."""
    if root := os.environ.get("MELTANO_PROJECT_ROOT"):
        return Path(root).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "meltano.yml").is_file():
            return folder
    return None


def flx_home() -> Path:
    """`FLX_HOME`, else `.flx` in the Meltano project root (found as Meltano finds it); never elsewhere."""
    if home := os.environ.get("FLX_HOME"):
        return Path(home).expanduser().resolve()
    root = project_root()
    if root is None:
        raise NoProject(
            f"no meltano.yml in {Path.cwd()} or any folder above it, and no database configured: "
            "run this inside a Meltano project, configure a database (host or sqlalchemy_url, "
            "FLX_DATABASE_URL for flx), or set FLX_HOME to keep an embedded PostgreSQL there"
        )
    return root / ".flx"


def embedded_url(database: str = EMBEDDED_DATABASE) -> URL:
    """Start (or reuse) the embedded server and return a URL to `database`, created if missing.

    Once per process and database: the log line saying where the data lives is written once.
    """
    pgdata = flx_home() / "pgdata"
    if (pgdata, database) in _started:
        return _started[pgdata, database]
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (cron, containers); pgserver copes without it.
        warnings.simplefilter("ignore")
        import pgserver  # imported here: starting a server is rare and the import is not free

    # pgserver narrates every start-up check at INFO; our one line below says what matters.
    logging.getLogger("pgserver").setLevel(logging.WARNING)

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    base = make_url(server.get_uri())
    _ensure_database(base, database)
    url = base.set(drivername="postgresql+psycopg", database=database)
    _announce(pgdata, database)
    _started[pgdata, database] = url
    return url


def _announce(pgdata: Path, database: str) -> None:
    """One line per run: processes started by one that said it (meltano's plugins under `flx run`) don't."""
    if os.environ.get(ANNOUNCED_VAR) == f"{pgdata}:{database}":
        log.debug("Using the embedded PostgreSQL in %s (database %r)", pgdata, database)
        return
    log.info("Using the embedded PostgreSQL in %s (database %r)", pgdata, database)
    os.environ[ANNOUNCED_VAR] = f"{pgdata}:{database}"


def embedded_bin_dir() -> str:
    """Where pgserver keeps its PostgreSQL binaries (psql among them), for machines without a client."""
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH)


def _ensure_database(base: URL, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(libpq_conninfo(base), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists:
            return
        # another process may create it between our check and our CREATE
        with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
