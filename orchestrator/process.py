"""One `meltano run` as a child process group: its log streamed live, its tail kept, its whole tree killable.

Meltano starts a tap and a target of its own; killing only Meltano would orphan them, still writing. The
child gets a new session (its own process group) and every signal goes to the group.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PROBLEM = re.compile(
    r"error|exception|traceback|failed|fatal|refused|denied|timed? ?out|cannot|could not|invalid|"
    r"\b(ORA|DPY|PLS)-\d+",
    re.IGNORECASE,
)
# Meltano's own wrap-up lines say *that* a block failed, never why; the plugin lines before them do.
_BOILERPLATE = re.compile(
    r"(Extractor|Loader|Mapper|Utility) failed|Block run completed|Run completed|Need help fixing|"
    r"melta\.no|friendly Slack",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int
    timed_out: bool
    cancelled: bool
    duration_seconds: float
    log_tail: str
    error: str | None


class ChildProcess:
    """Runs a command to completion, a deadline, or a cancel; thread-safe `cancel()` for signal handlers."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path | None,
        timeout_seconds: float | None,
        kill_grace_seconds: float = 10.0,
        output: TextIO | None = None,
        tail_lines: int = 200,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.timeout_seconds = timeout_seconds
        self.kill_grace_seconds = kill_grace_seconds
        self.output = output if output is not None else sys.stdout
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._cancel = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None

    def cancel(self) -> None:
        """Ask the run to stop (SIGTERM to the group now, SIGKILL after the grace period)."""
        self._cancel.set()

    def run(self, on_tick: Callable[[], None] | None = None, tick_seconds: float = 1.0) -> ProcessResult:
        """Block until the child ends; `on_tick` runs every `tick_seconds` meanwhile (heartbeats)."""
        started = time.monotonic()
        self._proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        reader = threading.Thread(target=self._pump, name="flx-child-log", daemon=True)
        reader.start()
        deadline = started + self.timeout_seconds if self.timeout_seconds else None
        timed_out = cancelled = False
        next_tick = started + tick_seconds
        while self._proc.poll() is None:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                timed_out = True
                self._stop_group()
                break
            if self._cancel.is_set():
                cancelled = True
                self._stop_group()
                break
            if on_tick is not None and now >= next_tick:
                next_tick = now + tick_seconds
                on_tick()
            time.sleep(0.1)
        code = self._proc.wait()
        reader.join(timeout=5)
        tail = "\n".join(self._tail)
        return ProcessResult(
            exit_code=code,
            timed_out=timed_out,
            cancelled=cancelled and not timed_out,
            duration_seconds=time.monotonic() - started,
            log_tail=tail,
            error=None if code == 0 and not timed_out and not cancelled else _error_lines(list(self._tail)),
        )

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._tail.append(_ANSI.sub("", line))
            try:
                self.output.write(line + "\n")
                self.output.flush()
            except (OSError, ValueError):
                pass

    def _stop_group(self) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is left after the grace period."""
        assert self._proc is not None
        _signal_group(self._proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=self.kill_grace_seconds)
        # Meltano may be gone while its tap or target ignore SIGTERM: the group outlives its leader.
        _signal_group(self._proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _error_lines(tail: list[str], keep: int = 5) -> str:
    """The last lines that look like the reason (errors, tracebacks), else the last few lines at all."""
    lines = [line.strip() for line in tail if line.strip() and not _BOILERPLATE.search(line)]
    problems = [line for line in lines if _PROBLEM.search(line)]
    chosen = (problems or lines)[-keep:]
    return "\n".join(chosen) if chosen else "no output"
