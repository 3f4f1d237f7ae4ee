"""Errors that stop a run with one line naming what is wrong and where."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import target_flx

if TYPE_CHECKING or not target_flx.LEAN:
    from singer_sdk.exceptions import MissingKeyPropertiesError, RecordsWithoutSchemaException
else:  # the start-up path that never imports singer-sdk (see main.py)

    class MissingKeyPropertiesError(Exception):
        pass

    class RecordsWithoutSchemaException(Exception):
        pass


class TargetError(Exception):
    """Anything target-flx reports as one line and a non-zero exit, without a traceback."""


class InputError(TargetError):
    """Bad input: names the stream, the input line number and, when known, the field."""

    def __init__(
        self, message: str, *, stream: str | None = None, line: int | None = None, field: str | None = None
    ) -> None:
        self.reason = message
        self.stream = stream
        self.line = line
        self.field = field
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = []
        if self.stream is not None:
            where.append(f"stream {self.stream!r}")
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field:
            where.append(f"field {self.field!r}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.reason}" if prefix else self.reason


class RecordBeforeSchema(InputError, RecordsWithoutSchemaException):
    """A RECORD for a stream whose SCHEMA has not arrived (singer-sdk's exception type, for its tests)."""


class MissingKeyProperty(InputError, MissingKeyPropertiesError):
    """A RECORD without (or with a null) key property."""


class LoadError(TargetError):
    """The database refused a batch or went away; names the stream and the input lines the batch came from."""

    def __init__(self, message: str, *, connection_lost: bool = False) -> None:
        super().__init__(message)
        self.connection_lost = connection_lost


class InternalError(TargetError):
    """A failure target-flx did not foresee: still one line (FLX_DEBUG=1 shows the traceback)."""


class SettingError(TargetError):
    """A setting's value cannot be used: names the setting and what it accepts."""


def debugging() -> bool:
    """FLX_DEBUG=1 (or debug logging): errors show their traceback instead of one line."""
    return os.environ.get("FLX_DEBUG") == "1" or os.environ.get("TARGET_FLX_LOG_LEVEL", "").lower() == "debug"
