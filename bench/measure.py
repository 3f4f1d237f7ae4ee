"""Run one loader process: wall time and peak RSS of its whole process tree.

RSS is sampled with psutil every 50 ms as the sum over the process and all its descendants (a loader may
fork workers, and `ru_maxrss` would only give the largest single process), max over the run. Samples can
miss a spike shorter than 50 ms; that is the stated resolution.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Measured:
    returncode: int
    wall_seconds: float
    peak_rss_bytes: int
    timed_out: bool


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue  # exited between listing and sampling
    return total


class _Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, _tree_rss(self.process))
            self.stop.wait(POLL_SECONDS)


def run_measured(
    command: Sequence[str],
    stdin: Path | None,
    stdout: Path,
    stderr: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> Measured:
    """Run `command` with stdin from a file and stdout/stderr to files (no pipes to drain)."""
    with (
        open(stdin if stdin is not None else os.devnull, "rb") as fin,
        stdout.open("wb") as fout,
        stderr.open("wb") as ferr,
    ):
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdin=fin, stdout=fout, stderr=ferr, env=env, cwd=cwd)
        sampler = _Sampler(proc.pid)
        sampler.start()
        timed_out = False
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            returncode = proc.wait()
        wall = time.perf_counter() - started
        sampler.stop.set()
        sampler.join()
    return Measured(returncode, wall, sampler.peak, timed_out)
