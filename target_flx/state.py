"""The STATE rule, enforced here and nowhere else.

A STATE received at input line L may go out once every record on a line before L is known committed: its
batch's COMMIT returned. The caller passes the floor, the lowest input line whose record is not known
committed (buffered, being encoded, in flight, refused, or lost with its connection); once anything
failed, `block` lowers that floor for the rest of the run, so no later STATE can slip out on an exit path.
Only the newest releasable STATE is written: it implies the older ones.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import IO, Any

import orjson


@dataclass(frozen=True)
class PendingState:
    line: int
    received: float  # monotonic time
    value: Any


class StateGate:
    def __init__(self, out: IO[str] | None = None) -> None:
        self._out = out
        self._pending: deque[PendingState] = deque()
        self._blocked_at: int | None = None
        self._last_emitted: bytes | None = None
        self.emitted = 0

    def receive(self, line: int, value: Any) -> None:
        self._pending.append(PendingState(line, time.monotonic(), value))

    def block(self, line: int) -> None:
        """Nothing on `line` or after it will be committed by this run."""
        self._blocked_at = line if self._blocked_at is None else min(self._blocked_at, line)

    @property
    def blocked_at(self) -> int | None:
        return self._blocked_at

    @property
    def waiting(self) -> bool:
        return bool(self._pending)

    def oldest_wait(self) -> float:
        """Seconds the oldest unreleased STATE has waited (0 when none waits)."""
        return time.monotonic() - self._pending[0].received if self._pending else 0.0

    def release(self, floor: int | None) -> None:
        """Write the newest STATE whose line is below `floor` (None: every record is committed)."""
        limit = floor
        if self._blocked_at is not None:
            limit = self._blocked_at if limit is None else min(limit, self._blocked_at)
        ready = None
        while self._pending and (limit is None or self._pending[0].line < limit):
            ready = self._pending.popleft()
        if ready is not None:
            self._write(ready.value)

    def _write(self, value: Any) -> None:
        encoded = orjson.dumps(value)
        if encoded == self._last_emitted:
            return
        out = self._out or sys.stdout
        out.write(encoded.decode() + "\n")
        out.flush()
        self._last_emitted = encoded
        self.emitted += 1
