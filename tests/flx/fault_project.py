"""A throwaway Meltano project for fault tests: a slow tap that logs when it is alive, a target that only
reads, and flx. Nothing in the job touches PostgreSQL, so a server restart changes flx's fate, not the job's.

The tap emits a record every 0.2 s for as many seconds as `tap_seconds` (a file the test writes) says, and
appends `<pid> <time>` to `ticks.log` each time: the log shows which copies of the job ran when, so any
overlap between two runs is visible. `tap-broken` fails the way a real source does: one line, exit 1.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from tests.flx.meltano_project import flx_plugin, project_env, run_flx

BIN = Path(sys.executable).parent
JOB = "sleepy-job"

TAP = """\
#!{python}
import json, os, sys, time
from pathlib import Path

here = Path(__file__).parent
seconds = float((here / "tap_seconds").read_text()) if (here / "tap_seconds").exists() else 10.0
print(json.dumps({{"type": "SCHEMA", "stream": "ticks", "key_properties": ["n"],
    "schema": {{"type": "object", "properties": {{"n": {{"type": "integer"}}}}}}}}), flush=True)
started, n = time.time(), 0
while time.time() - started < seconds:
    with open(here / "ticks.log", "a") as ticks:
        ticks.write(f"{{os.getpid()}} {{time.time()}}\\n")
    print(json.dumps({{"type": "RECORD", "stream": "ticks", "record": {{"n": n}}}}), flush=True)
    n += 1
    time.sleep(0.2)
print(json.dumps({{"type": "STATE", "value": {{"n": n}}}}), flush=True)
"""

BROKEN_TAP = """\
#!{python}
import sys
print("connecting to the source", file=sys.stderr)
print("source system unavailable", file=sys.stderr)
sys.exit(1)
"""

TARGET = """\
#!{python}
import json, sys
state = None
for line in sys.stdin:
    message = json.loads(line)
    if message.get("type") == "STATE":
        state = message["value"]
if state is None:
    print("ERROR: input ended before any STATE message (failed to read a complete stream)", file=sys.stderr)
else:
    print(json.dumps(state), flush=True)
"""


@dataclass
class FaultProject:
    root: Path
    env: dict[str, str]
    control: str

    def flx(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_flx(self.root, self.env, *args, timeout=timeout)

    def flx_background(self, name: str, *args: str) -> Background:
        """`flx ARGS` in its own session, stdout and stderr to files (a pipe nobody reads would stall it)."""
        out = (self.root / f"{name}.out").open("w")
        err = (self.root / f"{name}.err").open("w")
        process = subprocess.Popen(
            [str(BIN / "flx"), *args],
            cwd=self.root,
            env=self.env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        return Background(process, self.root / f"{name}.out", self.root / f"{name}.err", [out, err])

    def tap_seconds(self, seconds: float) -> None:
        (self.root / "tap_seconds").write_text(str(seconds))

    def tap_runs(self) -> dict[int, tuple[float, float]]:
        """Each tap process that ran, by pid: (first tick, last tick)."""
        spans: dict[int, list[float]] = defaultdict(list)
        path = self.root / "ticks.log"
        for line in path.read_text().splitlines() if path.exists() else []:
            pid, at = line.split()
            spans[int(pid)].append(float(at))
        return {pid: (min(times), max(times)) for pid, times in spans.items()}


@dataclass
class Background:
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    files: list[IO[str]]

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    @property
    def output(self) -> str:
        return self.stdout_path.read_text() + self.stderr_path.read_text()

    def close(self) -> None:
        for file in self.files:
            file.close()


def make_fault_project(
    root: Path, database_url: str, flx_config: dict[str, Any] | None = None
) -> FaultProject:
    root.mkdir(parents=True, exist_ok=True)
    control = f"ctl_{uuid.uuid4().hex[:8]}"
    for name, source in (("tap_sleepy", TAP), ("tap_broken", BROKEN_TAP), ("target_sink", TARGET)):
        script = root / f"{name}.py"
        script.write_text(source.format(python=sys.executable))
        script.chmod(0o755)
    document = {
        "project_id": "flx-faults",
        "default_environment": "dev",
        "environments": [{"name": "dev"}],
        "send_anonymous_usage_stats": False,
        "plugins": {
            "extractors": [
                {"name": "tap-sleepy", "namespace": "tap_sleepy", "executable": str(root / "tap_sleepy.py")},
                {"name": "tap-broken", "namespace": "tap_broken", "executable": str(root / "tap_broken.py")},
            ],
            "loaders": [
                {
                    "name": "target-sink",
                    "namespace": "target_sink",
                    "executable": str(root / "target_sink.py"),
                }
            ],
            "utilities": [flx_plugin(flx_config)],
        },
        "jobs": [
            {"name": JOB, "tasks": ["tap-sleepy target-sink"]},
            {"name": "broken-job", "tasks": ["tap-broken target-sink"]},
        ],
    }
    (root / "meltano.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    env = project_env(database_url, control)
    return FaultProject(root, env, control)
