"""One `meltano run` as a child process group: its log streamed live, its tail kept, its whole tree killable.

Meltano starts a tap and a target of its own; killing only Meltano would orphan them, still writing. The
command runs under `flx.execution.supervise`, which leads a new session (its own process group) and ends the
group when this process goes away, however it ends; every signal from here goes to the group, and whatever
is left in the group when the command exits is killed before the group's id can be reused.
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
from collections.abc import Callable, Iterable, Mapping, Sequence
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
# Which block failed, in Meltano's words, and the job name that says which plugin is which.
_FAILED = re.compile(r"\b(Extractor and loader|Extractor|Loader|Mappers) failed\b")
_JOB_NAME = re.compile(r"Running job with name '(?:[^':]*:)?(?P<pair>[^':]+-to-[^':]+)")
# A plugin's line as Meltano logs it: with a `string_id=` field (key=value logging), else the console's
# `<time> [<level>] <plugin> <message>`.
_ID_FIELD = re.compile(r"\bstring_id=(?P<name>[\w.-]+)")
_PLUGIN_LINE = re.compile(r"^\S+\s+\[\s*\w+\s*\]\s+(?P<name>\S+)\s")
# Failures that the same command fails with again: a plugin that is not installed, settings a plugin refuses.
# Retrying them only delays the alert, so the runner does not.
_NOT_RETRYABLE = re.compile(
    r"Cannot start plugin \S+: Executable .* could not be found|"
    r"Config validation failed|ConfigValidationError|"
    r"target-flx: error: (unknown setting|setting '|the settings? )"
)
# -P: the project folder (the child's cwd) must not shadow the installed `flx` package.
_SUPERVISOR = (sys.executable, "-P", "-m", "flx.execution.supervise")


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int
    timed_out: bool
    cancelled: bool
    duration_seconds: float
    log_tail: str
    error: str | None
    not_retryable: str | None = None  # the line saying why a retry would fail the same way


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
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.timeout_seconds = timeout_seconds
        self.kill_grace_seconds = kill_grace_seconds
        self.output = output if output is not None else sys.stdout
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._on_line = on_line  # every line, ANSI colours removed (the log store)
        self._cancel = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None

    def cancel(self) -> None:
        """Ask the run to stop (SIGTERM to the group now, SIGKILL after the grace period)."""
        self._cancel.set()

    def run(
        self,
        on_tick: Callable[[], None] | None = None,
        tick_seconds: float = 1.0,
        on_start: Callable[[int], None] | None = None,
    ) -> ProcessResult:
        """Block until the child ends; `on_tick` runs every `tick_seconds` meanwhile (lease checks).

        `on_start` gets the job's process group id as soon as it exists, for the record.
        """
        started = time.monotonic()
        self._proc = subprocess.Popen(
            [*_SUPERVISOR, f"{self.kill_grace_seconds}", "--", *self.argv],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.PIPE,  # never written: its end-of-file tells the supervisor we are gone
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if on_start is not None:
            on_start(self._proc.pid)
        reader = threading.Thread(target=self._pump, name="flx-child-log", daemon=True)
        reader.start()
        deadline = started + self.timeout_seconds if self.timeout_seconds else None
        timed_out, cancelled = self._watch(deadline, on_tick, tick_seconds)
        code = self._reap(reader)
        tail = "\n".join(self._tail)
        return ProcessResult(
            exit_code=code,
            timed_out=timed_out,
            cancelled=cancelled and not timed_out,
            duration_seconds=time.monotonic() - started,
            log_tail=tail,
            error=None if code == 0 and not timed_out and not cancelled else _error_lines(list(self._tail)),
            not_retryable=None if code == 0 or timed_out or cancelled else _not_retryable(self._tail),
        )

    def _watch(
        self, deadline: float | None, on_tick: Callable[[], None] | None, tick_seconds: float
    ) -> tuple[bool, bool]:
        """Until the child exits, or its time is up, or it is cancelled (then its group is stopped):
        (timed out, cancelled)."""
        assert self._proc is not None
        next_tick = time.monotonic() + tick_seconds
        while not _exited(self._proc):
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                self._stop_group()
                return True, False
            if self._cancel.is_set():
                self._stop_group()
                return False, True
            if on_tick is not None and now >= next_tick:
                next_tick = now + tick_seconds
                on_tick()
            time.sleep(0.1)
        return False, False

    def _reap(self, reader: threading.Thread) -> int:
        """The exit code, once nothing of the job is left and its output is read to the end."""
        assert self._proc is not None
        # The leader has exited but is not reaped yet, so the group id is still ours: end any stragglers.
        _signal_group(self._proc.pid, signal.SIGKILL)
        code = self._proc.wait()
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        reader.join(timeout=5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        return code

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            plain = _ANSI.sub("", line)
            self._tail.append(plain)
            if self._on_line is not None:
                self._on_line(plain)
            try:
                self.output.write(line + "\n")
                self.output.flush()
            except (OSError, ValueError):
                pass

    def _stop_group(self) -> None:
        """SIGTERM the whole group, then SIGKILL whatever is left after the grace period."""
        assert self._proc is not None
        _signal_group(self._proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.kill_grace_seconds
        while not _exited(self._proc) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Meltano may be gone while its tap or target ignore SIGTERM: the group outlives its leader.
        _signal_group(self._proc.pid, signal.SIGKILL)


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """Has the child exited? Asked without reaping it where the system allows (not macOS), so its pid, the
    group's id, stays reserved until the group's stragglers have been killed."""
    if not hasattr(os, "waitid"):
        return proc.poll() is not None
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _not_retryable(tail: Iterable[str]) -> str | None:
    return next((line.strip() for line in tail if _NOT_RETRYABLE.search(line)), None)


def _plugin(line: str) -> str | None:
    match = _ID_FIELD.search(line) or _PLUGIN_LINE.match(line)
    return match["name"] if match else None


def _failed_plugins(tail: list[str]) -> set[str] | None:
    """The plugins of the block Meltano reports failed, from its job name ('<tap>-to-<target>')."""
    verdict = pair = None
    for line in tail:
        if match := _JOB_NAME.search(line):
            pair = match["pair"]
        if match := _FAILED.search(line):
            verdict = match[1]
    if verdict is None:
        return None
    names = {name for line in tail if (name := _plugin(line)) and name != "meltano"}
    extractors = {n for n in names if pair and pair.startswith(f"{n}-to-")}
    loaders = {n for n in names if pair and pair.endswith(f"-to-{n}")}
    if not pair:  # no job name in the tail: plugin names are the only hint
        extractors = {n for n in names if n.startswith("tap")}
        loaders = {n for n in names if n.startswith("target")}
    failed = {
        "Extractor": extractors,
        "Loader": loaders,
        "Extractor and loader": extractors | loaders,
        "Mappers": names - extractors - loaders,
    }[verdict]
    return failed or None


def _error_lines(tail: list[str], keep: int = 5) -> str:
    """The failing block's own last error lines, else the last lines that look like the reason (errors,
    tracebacks) from anyone, else the last few lines at all.

    When a tap fails, the target usually fails or complains after it and Meltano logs its wrap-up last: the
    last lines of the whole log are rarely the reason, so the failed plugin's lines come first.
    """
    lines = [line.strip() for line in tail if line.strip() and not _BOILERPLATE.search(line)]
    failed = _failed_plugins(tail)
    if failed:
        theirs = [line for line in lines if _plugin(line) in failed]
        if theirs:
            problems = [line for line in theirs if _PROBLEM.search(line)]
            return "\n".join((problems or theirs)[-keep:])
    problems = [line for line in lines if _PROBLEM.search(line)]
    chosen = (problems or lines)[-keep:]
    return "\n".join(chosen) if chosen else "no output"
