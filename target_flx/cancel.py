"""SIGTERM/SIGINT: commit what was received, emit its STATE, exit 143.

The handler raises `Cancelled` wherever the main thread is. When that is inside a finalizer (`__del__`, a
weakref callback, the garbage collector) the interpreter prints the exception and carries on, so the
signal would be lost and the run would end with 0. The handler therefore also remembers the signal, and
`raise_if_cancelled` raises it again at the next safe point: between input chunks and after the load.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType
from typing import NoReturn

from target_flx.errors import TargetError


class Cancelled(TargetError):
    """SIGTERM/SIGINT: commit what was received, emit its STATE, then exit non-zero."""


_received: int | None = None


def _message(signum: int) -> str:
    return f"received signal {signal.Signals(signum).name}: committed what was received"


def cancel(signum: int, _frame: FrameType | None = None) -> NoReturn:
    """The signal handler for the load (also singer-sdk's termination hook)."""
    global _received
    _received = signum
    raise Cancelled(_message(signum))


def cancel_on_signals() -> None:
    signal.signal(signal.SIGTERM, cancel)
    signal.signal(signal.SIGINT, cancel)


def raise_if_cancelled() -> None:
    """Raise the cancel a finalizer swallowed."""
    if _received is not None:
        raise Cancelled(_message(_received))


def stop_after_the_load() -> None:
    """From now on a SIGTERM/SIGINT ends the process at once with 143 and one line: everything received
    is committed and its STATE written. Raising `Cancelled` this late could land in the interpreter's
    shutdown, which prints a traceback and exits 0."""

    def stop(signum: int, _frame: FrameType | None) -> NoReturn:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.write(
                f"target-flx: received signal {signal.Signals(signum).name} after the load had finished: "
                "everything received was committed\n"
            )
            sys.stderr.flush()
        os._exit(143)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    raise_if_cancelled()
