"""`flx logs` and `flx cancel`: follow and stop an execution from any shell on any machine.

Both work through the control schema only, never through a process id: the log is read from the chunks
the runner stores (`flx.execution.logstore`), and a cancel is a request written on the execution, which the
runner holding it reads with its next heartbeat, stops the job and records `cancelled`.
"""

from __future__ import annotations

import contextlib
import getpass
import socket
import sys
import time
from typing import Any

import click

from flx.cli.context import err_console, load, reader
from flx.cli.errors import EXIT_CANCELLED, EXIT_FAILED, EXIT_USAGE, FlxError
from flx.execution.cancel import request_cancel
from flx_core.statuses import ACTIVE

POLL_SECONDS = 0.5


def _find(conn: Any, schema: str, ref: str, command: str) -> tuple[Any, ...]:
    from flx.cli.history import ExecutionNotFound, find_execution

    try:
        return find_execution(conn, schema, ref, ", e.log_tail, e.hostname, e.pid, e.heartbeat_at")
    except ExecutionNotFound as exc:
        raise FlxError(f"{command}: {exc}", EXIT_USAGE) from None


@click.command()
@click.argument("execution")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the run ends.")
@click.option("--tail", "last", type=click.IntRange(min=1), metavar="N", help="Only the last N lines.")
def logs(execution: str, follow: bool, last: int | None) -> None:
    """An execution's complete output: meltano, its plugins, and flx's own ▸ lines (id, id prefix,
    pipeline#N, or a pipeline's name for its newest run)."""
    from flx.cli.history import ExecutionRow
    from flx.execution.logchunks import lines_after, read_chunks

    settings = load()
    schema = settings.database.control_schema
    with reader(settings) as conn:
        *columns, log_tail, _host, _pid, _heartbeat = _find(conn, schema, execution, "flx logs")
        row = ExecutionRow(*columns)
        lines, following = lines_after(read_chunks(conn, schema, row.id), 0)
        if not lines and row.status not in ACTIVE:
            _no_log(row, log_tail, settings.log_retention_days)
            return
        if last is not None:
            lines = lines[-last:]
        with _quiet_on_closed_pipe():
            _echo(lines)
            status = row.status
            while follow and status in ACTIVE:
                time.sleep(POLL_SECONDS)
                status = _status(conn, schema, row.id)
                lines, following = lines_after(read_chunks(conn, schema, row.id, following), following)
                _echo(lines)
            if follow:
                # the runner writes its last lines, then the final status: read once more after it
                lines, following = lines_after(read_chunks(conn, schema, row.id, following), following)
                _echo(lines)
                err_console().print(f"{row.pipeline} #{row.execution_number}: {status}", highlight=False)


def _echo(lines: list[str]) -> None:
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()


def _no_log(row: Any, log_tail: str | None, retention_days: float) -> None:
    what = f"{row.pipeline} #{row.execution_number}"
    kept = f"logs are kept {retention_days:g} days" if retention_days else "logs are kept forever"
    reason = f"no log is stored for {what} (it ran before flx kept logs, or it is older than {kept})"
    if not log_tail:
        raise FlxError(f"flx logs: {reason}", EXIT_FAILED)
    err_console().print(f"flx logs: {reason}; the last lines kept with the run:", highlight=False)
    with _quiet_on_closed_pipe():
        _echo(log_tail.splitlines())


def _status(conn: Any, schema: str, execution_id: Any) -> str:
    from psycopg import sql

    query = sql.SQL("SELECT status FROM {}.executions WHERE id = %s").format(sql.Identifier(schema))
    found = conn.execute(query, (execution_id,)).fetchone()
    return str(found[0]) if found else "deleted"


@contextlib.contextmanager
def _quiet_on_closed_pipe() -> Any:
    """`flx logs X | head` closes the pipe early; Ctrl-C of `--follow` is how one stops following."""
    try:
        yield
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            sys.stdout = None  # nothing more to flush at exit
    except KeyboardInterrupt:
        sys.exit(EXIT_CANCELLED)


@click.command()
@click.argument("execution")
@click.option("--no-wait", is_flag=True, help="Ask, and return without waiting for the run to stop.")
@click.option(
    "--wait-seconds",
    type=click.FloatRange(min=0),
    metavar="S",
    help="How long to wait for the run to stop [default: heartbeat + kill grace + 30 s].",
)
def cancel(execution: str, no_wait: bool, wait_seconds: float | None) -> None:
    """Stop a running execution, wherever its runner is: the runner stops the job and records
    `cancelled` (id, id prefix, pipeline#N, or a pipeline's name for its newest run)."""
    from flx.cli.history import ExecutionRow

    settings = load()
    schema = settings.database.control_schema
    by = f"{getpass.getuser()}@{socket.gethostname()}"
    with reader(settings) as conn:
        *columns, _tail, host, pid, _heartbeat = _find(conn, schema, execution, "flx cancel")
        row = ExecutionRow(*columns)
        what = f"{row.pipeline} #{row.execution_number}"
        if row.status not in ACTIVE:
            raise FlxError(
                f"flx cancel: {what} is {row.status.replace('_', ' ')} already: there is nothing to cancel",
                EXIT_USAGE,
            )
        requested = request_cancel(conn, schema, row.id, by)
        if requested is None:
            raise FlxError(f"flx cancel: {what} ended meanwhile: there is nothing to cancel", EXIT_USAGE)
        _when, who = requested
        if who != by:
            err_console().print(f"{what}: cancel was requested already, by {who}", highlight=False)
        err_console().print(
            f"{what}: cancel requested; its runner (pid {pid} on {host}) stops the job with its next "
            f"heartbeat (within {settings.heartbeat_interval_seconds:g} s)",
            highlight=False,
        )
        if no_wait:
            return
        limit = wait_seconds
        if limit is None:
            limit = settings.heartbeat_interval_seconds + settings.kill_grace_seconds + 30
        started = time.monotonic()
        status = row.status
        with contextlib.suppress(KeyboardInterrupt):
            while status in ACTIVE and time.monotonic() - started < limit:
                time.sleep(POLL_SECONDS)
                status = _status(conn, schema, row.id)
        took = time.monotonic() - started
    if status == "cancelled":
        err_console().print(f"{what}: cancelled ({took:.1f} s after the request)", highlight=False)
        return
    if status in ACTIVE:
        raise FlxError(
            f"flx cancel: {what} is still {status} {took:.0f} s after the request: its runner (pid {pid} on "
            f"{host}) has not acted on it; if that process is gone, the next flx start marks the run failed",
            EXIT_FAILED,
        )
    raise FlxError(f"flx cancel: {what} ended {status} before it could be cancelled", EXIT_FAILED)
