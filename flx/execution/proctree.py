"""The processes of one job: found by process group and execution id, killed as a whole.

A job is `meltano run` and the tap, target and mappers it starts, all in the process group its supervisor
leads. A runner that died can leave that group behind; whoever finds the dead execution on the same host
ends what is left of it. Only processes that carry the execution's `FLX_EXECUTION_ID` are touched, so a
reused group id never costs an unrelated process its life.

Linux reads `/proc`; elsewhere a job's processes cannot be told apart, so they are never signalled from
here (the supervisor and the runner still end them) and a group that exists counts as alive.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

_PROC = Path("/proc")
_BOOT_ID = _PROC / "sys" / "kernel" / "random" / "boot_id"


def has_proc() -> bool:
    return (_PROC / "self" / "stat").exists()


def host_identity() -> str:
    """This machine as recorded with an execution: hostname plus the kernel's boot id where there is one.

    A pid means something only on the machine, and the boot, that gave it out: after a reboot, or on a
    second machine with the same hostname, a recorded pid must not be taken for a live one.
    """
    name = socket.gethostname()
    try:
        return f"{name}/{_BOOT_ID.read_text().strip()}"
    except OSError:
        return name


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of `pid` from /proc, None when it is gone."""
    try:
        raw = (_PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fixed fields follow the last ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[2])


def pid_alive(pid: int) -> bool:
    """Is `pid` a running process (zombies are dead: they only wait to be reaped)?"""
    if has_proc():
        stat = _stat(pid)
        return stat is not None and stat[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_members(pgid: int) -> list[int] | None:
    """Live pids in process group `pgid`; None where /proc is not there to ask."""
    if not has_proc():
        return None
    members = []
    for entry in os.scandir(_PROC):
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            state, group = stat
            if group == pgid and state not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def _belongs(pid: int, execution_id: str) -> bool | None:
    """Does `pid` run for this execution? None when its environment cannot be read (another user's)."""
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except PermissionError:
        return None
    except OSError:
        return False
    return f"FLX_EXECUTION_ID={execution_id}".encode() in environ.split(b"\0")


def job_processes(pgid: int, execution_id: str) -> list[int] | None:
    """The job's live processes in group `pgid`, unreadable ones included; None when that is unknowable."""
    members = group_members(pgid)
    if members is None:
        return None
    return [pid for pid in members if _belongs(pid, execution_id) is not False]


def job_gone(pgid: int, execution_id: str) -> bool:
    """True only when nothing of the job can be left: no matching process (or, without /proc, no group)."""
    found = job_processes(pgid, execution_id)
    if found is not None:
        return not found
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def end_job(pgid: int, execution_id: str, grace_seconds: float, settle_seconds: float = 3.0) -> bool:
    """SIGTERM the job's processes, SIGKILL what is left after the grace period; True when none remain."""
    deadline = time.monotonic() + grace_seconds
    terminated: set[int] = set()
    while True:
        found = job_processes(pgid, execution_id)
        if found is None:
            return job_gone(pgid, execution_id)
        if not found:
            return True
        now = time.monotonic()
        if now > deadline + settle_seconds:
            return False
        killing = now >= deadline
        for pid in found:
            if killing or pid not in terminated:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL if killing else signal.SIGTERM)
                terminated.add(pid)
        time.sleep(0.1)
