"""The embedded PostgreSQL used when nothing is configured, so `meltano run` works on a fresh machine.

pgserver keeps one server per data directory and serialises start-up with an inter-process lock, so
two plugins of one `meltano run` share the server instead of racing over the data directory. The server
is left running when the process exits (the next plugin in the pipeline reuses it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flx_core.settings import SettingsError, libpq_conninfo

if TYPE_CHECKING:  # SQLAlchemy is loaded only when the server is started: finding the project needs none
    from sqlalchemy.engine import URL

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
    from sqlalchemy.engine import URL

    info = _server(pgdata)
    base = URL.create(
        "postgresql+psycopg",
        username="postgres",
        port=info.port,
        database="postgres",
        query={"host": str(info.socket_dir)} if info.socket_dir else {},
    )
    if not info.socket_dir:
        base = base.set(host=info.hostname)
    _ensure_database(base, database)
    url = base.set(database=database)
    _announce(pgdata, database)
    _started[pgdata, database] = url
    return url


@dataclass(frozen=True)
class EmbeddedServer:
    """Where a running embedded server listens: its Unix socket directory, and a loopback TCP port."""

    pgdata: Path
    pid: int
    port: int
    socket_dir: Path | None
    hostname: str | None

    @property
    def tcp_url(self) -> str | None:
        """A URL other tools (psql, dbt, DBeaver) can use; None for a server listening on a socket only."""
        if not self.hostname or self.hostname in ("*", ""):
            return None
        return f"postgresql://postgres@{self.hostname}:{self.port}"


def running_server(pgdata: Path | None = None) -> EmbeddedServer | None:
    """The embedded server of `pgdata` (default: this project's) if it is running; never starts one."""
    pgdata = pgdata or flx_home() / "pgdata"
    info = _postmaster(pgdata)
    if info is None or not info.is_running():
        return None
    return EmbeddedServer(pgdata, info.pid, info.port, info.socket_dir, info.hostname)


def stop_server(pgdata: Path | None = None) -> EmbeddedServer | None:
    """Stop the embedded server (fast shutdown: open sessions end); the one stopped, or None."""
    pgdata = pgdata or flx_home() / "pgdata"
    server = running_server(pgdata)
    if server is None:
        return None
    _quiet_pgserver()
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_system_user())
    return server


def _quiet_pgserver() -> None:
    # pgserver narrates every start-up check at INFO; our one line says what matters.
    logging.getLogger("pgserver").setLevel(logging.WARNING)


def _postmaster(pgdata: Path) -> Any:
    if not (pgdata / "postmaster.pid").exists():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.utils import PostmasterInfo
    try:
        return PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError):  # a half-written file while the server starts or stops
        return None


def _system_user() -> str | None:
    """pgserver runs the server as `pgserver` when we are root (PostgreSQL refuses to run as root)."""
    return "pgserver" if os.name == "posix" and os.geteuid() == 0 else None


def _server(pgdata: Path) -> Any:
    """Start the server of `pgdata` (serialised across processes by pgserver's lock) or find it running."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (cron, containers); pgserver copes without it.
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import PostgresServer  # the import is not free: starting is rare

    _quiet_pgserver()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    pgdata = pgdata.resolve()
    pgdata.mkdir(exist_ok=True)
    server = PostgresServer._instances.get(pgdata)
    if server is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = _loopback_server_class(PostgresServer)(pgdata, cleanup_mode=None)
    return server.get_postmaster_info()


def _loopback_server_class(base: type) -> type:
    """pgserver's server, started listening on 127.0.0.1 as well as its socket, on a port kept per home."""

    class LoopbackServer(base):
        def ensure_postgres_running(self) -> None:
            from pgserver._commands import pg_ctl  # type: ignore[attr-defined]
            from pgserver.utils import PostmasterInfo, find_suitable_socket_dir

            info = PostmasterInfo.read_from_pgdata(self.pgdata)
            if info is not None and info.is_running():
                self._postmaster_info = info
                return
            socket_dir = find_suitable_socket_dir(self.pgdata, self.runtime_path)
            if self.system_user is not None and socket_dir != self.pgdata:
                from pgserver.utils import ensure_prefix_permissions

                ensure_prefix_permissions(socket_dir)
                socket_dir.chmod(0o777)
            port = _port(self.pgdata.parent)
            listen = ["-o", "-h 127.0.0.1", "-o", f"-p {port}", "-o", f"-k {socket_dir}"]
            pg_ctl(
                ["-w", *listen, "-l", str(self.log), "start"],
                pgdata=self.pgdata,
                user=self.system_user,
                timeout=30,
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                info = PostmasterInfo.read_from_pgdata(self.pgdata)
                if info is not None and info.is_running() and info.status == "ready":
                    self._postmaster_info = info
                    return
                time.sleep(0.2)
            raise RuntimeError(
                f"the embedded PostgreSQL in {self.pgdata} did not become ready; see {self.log}"
            )

    return LoopbackServer


PORT_FILE = "port"
_PORTS = range(54320, 54800)


def _port(home: Path) -> int:
    """The loopback port of the server in `home`: the one it used before when it is free, else a free one
    chosen from the path (so a project keeps its port), remembered in `home/port`."""
    remembered = home / PORT_FILE
    try:
        port = int(remembered.read_text().strip())
    except (OSError, ValueError):
        port = _PORTS[zlib.crc32(str(home).encode()) % len(_PORTS)]
    candidates = [port, *(p for p in _PORTS if p != port)]
    for candidate in candidates:
        if _free(candidate):
            remembered.write_text(f"{candidate}\n")
            return candidate
    raise RuntimeError(f"no free TCP port in {_PORTS.start}-{_PORTS.stop - 1} for the embedded PostgreSQL")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As PostgreSQL binds: a port whose last connections are in TIME_WAIT is free to listen on.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


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
