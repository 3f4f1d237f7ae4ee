"""Background processes in tests: their pipes close with them, however the test ends with them."""

from __future__ import annotations

import subprocess
import weakref
from typing import TypeVar

P = TypeVar("P", bound=subprocess.Popen)  # type: ignore[type-arg]


def closing_pipes(process: P) -> P:
    """`process`, whose stdin/stdout/stderr pipes are closed when it is dropped.

    A test that kills a process, or only waits for it, leaves its pipes to the garbage collector, which
    warns (and the suite makes warnings errors).
    """
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            weakref.finalize(process, pipe.close)
    return process
