"""The job's supervisor: a tiny process between the runner and `meltano run`; the job ends with the runner.

`python -m flx.execution.supervise GRACE -- COMMAND...` leads the job's process group (the runner starts it in
a new session) and runs COMMAND in that group. Its stdin is a pipe whose other end only the runner holds,
so end-of-file there means the runner is gone, however it ended (SIGKILL and the OOM killer included): the
supervisor then SIGTERMs the group, gives it GRACE seconds, and SIGKILLs it, itself last. Meltano, its
tap and its target cannot outlive the runner by more than the grace period.

Otherwise it is transparent: COMMAND's output goes straight to the runner's pipe, and the supervisor exits
as COMMAND did (with its exit code, or killed by the same signal). A SIGTERM sent to the group by the
runner (a timeout, a cancel) reaches COMMAND directly; the supervisor waits for COMMAND to end.

Standard library only, and nothing but `proctree` from flx: it starts in milliseconds for every attempt.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from types import FrameType

from flx.execution.proctree import group_members

USAGE = "usage: python -m flx.execution.supervise GRACE_SECONDS -- COMMAND [ARGS...]"


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    """A handler, not SIG_IGN: an ignored signal would stay ignored in COMMAND after exec."""


def _stop_group(child: subprocess.Popen[bytes], grace_seconds: float) -> None:
    """The runner is gone: SIGTERM the group, wait for it up to the grace period, then SIGKILL it (us too)."""
    deadline = time.monotonic() + grace_seconds
    with contextlib.suppress(ProcessLookupError):
        os.killpg(0, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=grace_seconds)
    me = os.getpid()
    while time.monotonic() < deadline:
        members = group_members(os.getpgrp())
        if members is None or not [pid for pid in members if pid != me]:
            break
        time.sleep(0.1)
    os.killpg(0, signal.SIGKILL)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(USAGE, file=sys.stderr)
        return 2
    grace_seconds = float(argv[0])
    signal.signal(signal.SIGTERM, _ignore)
    child = subprocess.Popen(argv[2:], stdin=subprocess.DEVNULL)
    watched = sys.stdin.fileno()
    while child.poll() is None:
        ready, _, _ = select.select([watched], [], [], 0.2)
        if ready and not os.read(watched, 4096):
            _stop_group(child, grace_seconds)
    code = child.returncode
    if code < 0:  # killed by a signal: so are we, so that the runner sees what COMMAND saw
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
