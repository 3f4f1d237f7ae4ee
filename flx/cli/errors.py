"""How `flx` ends when it cannot do what was asked: one line (what, where, what to do) and a documented code.

`FLX_DEBUG=1` prints the traceback above the line. Only the standard library and click are imported here:
every command loads this, and the libraries a message is about are already loaded when they fail.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from typing import IO, Any, ClassVar

import click

EXIT_OK = 0
EXIT_FAILED = 1  # the run failed, or `flx check` found a problem
EXIT_USAGE = 2  # a mistake in the command line or the configuration
EXIT_FAILED_VALIDATION = 3
EXIT_UNAVAILABLE = 69  # a dependency (the database, meltano) cannot be reached or used
EXIT_INTERNAL = 70  # a bug in flx
EXIT_SKIPPED = 75
EXIT_TIMED_OUT = 124
EXIT_CANCELLED = 130

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILED: "the run failed (after its retries), or `flx check` found a problem",
    EXIT_USAGE: "a mistake in the command line or in the configuration (nothing was run or recorded)",
    EXIT_FAILED_VALIDATION: "the run succeeded but a blocking validation failed",
    EXIT_UNAVAILABLE: "a dependency could not be reached or used: PostgreSQL, meltano",
    EXIT_INTERNAL: "an unexpected error inside flx (FLX_DEBUG=1 shows the traceback)",
    EXIT_SKIPPED: "skipped: the pipeline was already running on all its slots",
    EXIT_TIMED_OUT: "the run timed out",
    EXIT_CANCELLED: "the run was cancelled (SIGINT/SIGTERM)",
}


def debug() -> bool:
    return os.environ.get("FLX_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")


class FlxError(click.ClickException):
    """A one-line answer on stderr, prefixed `flx:`; with FLX_DEBUG=1 the cause's traceback first.

    `FlxError(message, code)` is an instance of the subclass carrying that exit code.
    """

    exit_code = EXIT_USAGE
    _by_code: ClassVar[dict[int, type[FlxError]]] = {}

    def __new__(cls, message: str, exit_code: int | None = None) -> FlxError:
        if exit_code is not None and exit_code != cls.exit_code:
            cls = FlxError._by_code.get(exit_code) or type(
                f"FlxError{exit_code}", (FlxError,), {"exit_code": exit_code}
            )
            FlxError._by_code[exit_code] = cls
        return super().__new__(cls, message)

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)

    def show(self, file: IO[Any] | None = None) -> None:
        stream = file or sys.stderr
        cause = self.__cause__
        if debug() and cause is not None:
            traceback.print_exception(cause, file=stream)
        message = self.format_message()
        click.echo(message if message.startswith("flx ") else f"flx: {message}", file=stream)


class UsageMistake(click.UsageError):
    """Click's usage errors on one line, with where to look for help."""

    def show(self, file: IO[Any] | None = None) -> None:
        stream = file or sys.stderr
        where = self.ctx.command_path if self.ctx is not None else "flx"
        hint = f"see `{where} -h`"
        if where.endswith(" run") and "No such option" in self.format_message():
            hint += "; meltano's own options go after `--`: flx run JOB -- --option"
        click.echo(f"{where}: {self.format_message()} ({hint})", file=stream)


def one_line_usage(exc: click.UsageError) -> UsageMistake:
    return UsageMistake(exc.format_message(), exc.ctx)


# What a database failure means to the person reading it: (pattern in the driver's message, what to do).
_DATABASE_ADVICE = (
    (re.compile(r'database "([^"]+)" does not exist'), "create it, or fix the `database` setting"),
    (re.compile(r'role "([^"]+)" does not exist'), "fix the `user` setting"),
    (re.compile(r"password authentication failed|no password supplied"), "fix the user or password"),
    (re.compile(r"Connection refused"), "start the server, or fix the host and port settings"),
    (
        re.compile(r"could not translate host name|Name or service not known|nodename nor servname"),
        "fix the `host` setting",
    ),
    (re.compile(r"timeout expired|timed out"), "check the host, port and network"),
    (re.compile(r"No such file or directory"), "start the server, or fix the host setting"),
)


def database_reason(exc: BaseException) -> tuple[str, str]:
    """(the driver's reason, what to do) for a failed database connection or query, each one short line."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[0] if lines else type(original).__name__
    reason = re.sub(r"^connection failed: ", "", reason)
    reason = re.sub(r"^connection to server (at|on) .*? failed: (FATAL:\s+)?", "", reason)
    for pattern, advice in _DATABASE_ADVICE:
        if pattern.search(text):
            return reason, advice
    return reason, "check the database settings (`flx check` tests them)"


def is_database_error(exc: BaseException) -> bool:
    """A failure talking to PostgreSQL (connection or server), told apart without importing a driver."""
    for cls in type(exc).__mro__:
        module = cls.__module__
        if module.startswith("sqlalchemy.exc") and cls.__name__ in (
            "OperationalError",
            "InterfaceError",
            "ProgrammingError",
            "DBAPIError",
            "TimeoutError",
        ):
            return True
        if module.startswith("psycopg") and cls.__name__ in ("OperationalError", "InterfaceError"):
            return True
        if cls.__name__ == "DatabaseUnavailable" and module.startswith("flx."):
            return True
    return False


def _named(exc: BaseException, *names: str) -> bool:
    return any(cls.__name__ in names for cls in type(exc).__mro__)


def translate(exc: Exception, database: str | None = None) -> FlxError:
    """The one-line answer for an exception no command handled itself."""
    if _named(exc, "SettingsError", "AlertConfigError", "OracleConfigError"):
        return FlxError(str(exc).strip().splitlines()[0], EXIT_USAGE)
    if is_database_error(exc):
        if _named(exc, "DatabaseUnavailable"):
            return FlxError(f"{exc}", EXIT_UNAVAILABLE)
        reason, advice = database_reason(exc)
        where = f" at {database}" if database else ""
        return FlxError(f"cannot use PostgreSQL{where}: {reason}; {advice}", EXIT_UNAVAILABLE)
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return FlxError(f"{exc.filename}: not found", EXIT_UNAVAILABLE)
    if isinstance(exc, OSError):
        return FlxError(
            f"{exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}", EXIT_UNAVAILABLE
        )
    first = (str(exc).strip().splitlines() or [""])[0]
    return FlxError(
        f"unexpected {type(exc).__name__}: {first} (a bug in flx; FLX_DEBUG=1 shows the traceback)",
        EXIT_INTERNAL,
    )
