"""`flx ui`: the execution history as web pages, and `/metrics`, served from the control schema."""

from __future__ import annotations

import secrets
import socket

import click

from flx.cli.context import console, database, load, reader
from flx.cli.errors import EXIT_USAGE, FlxError

TOKEN_ENV = "FLX_UI_TOKEN"
MIN_TOKEN_LENGTH = 12


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="0: any free port."
)
@click.option("--actions", is_flag=True, help='Allow "run now" and "cancel" (they need the token).')
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    help=f"Token for actions, and for every page beyond loopback (or {TOKEN_ENV}); generated for --actions.",
)
def ui(host: str, port: int, actions: bool, token: str | None) -> None:
    """Serve the run history as web pages (pipelines, runs, charts, alerts) and Prometheus /metrics."""
    try:
        import uvicorn

        from flx.ui.app import UiConfig, create_app
        from flx.ui.auth import is_loopback
    except ImportError as exc:
        raise FlxError(
            f"flx ui needs the ui extra ({exc.name} is missing): pip install 'flx[ui]'", EXIT_USAGE
        ) from exc
    public = not is_loopback(host)
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise FlxError(f"flx ui: the token must be at least {MIN_TOKEN_LENGTH} characters long", EXIT_USAGE)
    if public and token is None:
        raise FlxError(
            f"flx ui: refusing to listen on {host} without a token: anyone who reaches it would read the run "
            f"history. Give --token (or {TOKEN_ENV}), or listen on 127.0.0.1",
            EXIT_USAGE,
        )
    generated = actions and token is None
    if generated:
        token = secrets.token_urlsafe(24)

    from flx_core.database import make_engine
    from flx_core.settings import describe

    settings = load()
    with reader(settings):  # upgrades the control schema or recovers dead runs first, as every command does
        pass
    resolved = database(settings)
    engine = make_engine(resolved, pool_size=4)
    where = f"{describe(resolved.url())} schema {resolved.control_schema}"
    app = create_app(UiConfig(engine, settings, actions, token, public, where, resolved.control_schema))
    listener = _listen(host, port)
    bound_port = listener.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound_port}/"
    console().print(f"flx ui: {url} (history of {where})", highlight=False, soft_wrap=True)
    if generated:
        console().print(
            f"flx ui: actions token {token} (log in: {url}?token={token})", highlight=False, soft_wrap=True
        )
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="off",
    )
    try:
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        engine.dispose()


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound here so that a busy port or a wrong address is one clear line."""
    try:
        family, kind, proto, _name, _address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
        # without it every keep-alive response waits for the browser's delayed ACK (40 ms).
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        raise FlxError(f"flx ui: cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_USAGE) from exc
    return sock
