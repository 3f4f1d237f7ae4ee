"""The job's supervisor and the choice of error lines, without Meltano: seconds, not minutes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

from flx.execution.process import ChildProcess, _error_lines
from flx.execution.proctree import end_job, group_members, job_gone, pid_alive


def _child(argv: list[str]) -> ChildProcess:
    return ChildProcess(argv, env=dict(os.environ), cwd=None, timeout_seconds=None, kill_grace_seconds=1)


def test_the_supervisor_is_transparent_for_exit_codes_and_signals() -> None:
    groups: list[int] = []
    done = _child([sys.executable, "-c", "import sys; print('bye'); sys.exit(3)"]).run(on_start=groups.append)
    assert (done.exit_code, done.log_tail) == (3, "bye")
    killed = _child([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"]).run()
    assert killed.exit_code == -signal.SIGTERM
    assert groups and group_members(groups[0]) == []


def test_a_job_ends_within_the_grace_period_when_its_runner_is_killed() -> None:
    runner = textwrap.dedent(
        """
        import os, sys
        from flx.execution.process import ChildProcess
        child = ChildProcess(
            ["sh", "-c", "sleep 60 & sleep 60 & wait"], env=dict(os.environ), cwd=None,
            timeout_seconds=None, kill_grace_seconds=1, output=open(os.devnull, "w"),
        )
        child.run(on_start=lambda pgid: print(pgid, flush=True))
        """
    )
    process = subprocess.Popen([sys.executable, "-c", runner], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    pgid = int(process.stdout.readline())
    deadline = time.monotonic() + 10
    while len(group_members(pgid) or []) < 3 and time.monotonic() < deadline:  # supervisor, sh, sleeps
        time.sleep(0.05)
    assert len(group_members(pgid) or []) >= 3
    process.kill()
    process.wait()
    process.stdout.close()
    killed = time.monotonic()
    while group_members(pgid) and time.monotonic() - killed < 10:
        time.sleep(0.05)
    assert group_members(pgid) == [], "the job outlived its runner"
    assert time.monotonic() - killed < 3


def test_end_job_touches_only_the_executions_processes() -> None:
    execution = str(uuid.uuid4())
    mine = subprocess.Popen(
        ["sleep", "60"], env={**os.environ, "FLX_EXECUTION_ID": execution}, start_new_session=True
    )
    other = subprocess.Popen(["sleep", "60"], env={**os.environ, "FLX_EXECUTION_ID": "another"})
    try:
        assert not job_gone(mine.pid, execution)
        assert job_gone(mine.pid, str(uuid.uuid4())), "a reused group id with other processes is not ours"
        assert end_job(mine.pid, execution, grace_seconds=1)
        mine.wait(timeout=5)
        assert pid_alive(other.pid)
    finally:
        for process in (mine, other):
            process.kill()
            process.wait()


LOG = """\
2026-12-01T22:14:59.506208Z [info     ] meltano      Running job with name 'dev:tap-src-to-target-dw'
2026-12-01T22:14:59.600000Z [info     ] tap-src      Beginning full_table sync of 'orders'...
2026-12-01T22:14:59.655870Z [info     ] tap-src      source system unavailable
2026-12-01T22:15:00.621769Z [info     ] target-dw    target-dw v0.1.0
2026-12-01T22:15:00.630625Z [info     ] target-dw    ERROR: input ended before any STATE message
2026-12-01T22:15:00.944920Z [error    ] meltano      {verdict}
2026-12-01T22:15:00.945612Z [error    ] meltano      Block run completed
"""


def test_the_failed_blocks_own_lines_are_the_error() -> None:
    tap = _error_lines(LOG.format(verdict="Extractor failed").splitlines())
    assert "source system unavailable" in tap and "target-dw" not in tap
    target = _error_lines(LOG.format(verdict="Loader failed").splitlines())
    assert target.endswith("ERROR: input ended before any STATE message") and "tap-src" not in target
    both = _error_lines(LOG.format(verdict="Extractor and loader failed").splitlines())
    assert "ERROR: input ended" in both
    unknown = _error_lines(LOG.format(verdict="Run completed").splitlines())  # no verdict: the old rule
    assert unknown.endswith("ERROR: input ended before any STATE message")


def test_key_value_log_lines_name_their_plugin() -> None:
    lines = [
        "2026-12-01T22:14:59Z [info ] Running job with name 'dev:tap-a-to-target-b' and run ID 'x'",
        "2026-12-01T22:14:59Z [info ] source system unavailable name=tap-a string_id=tap-a stdio=stderr",
        "2026-12-01T22:15:00Z [info ] Traceback: boom name=target-b string_id=target-b stdio=stderr",
        "2026-12-01T22:15:00Z [error ] Extractor failed",
    ]
    assert _error_lines(lines) == lines[1]
