"""The anchor loaders, each in its own venv under bench/.venvs, installed from PyPI on first use.

Own venvs because the anchors pin dependencies (singer-sdk, SQLAlchemy, psycopg2) that must not meet
flx's. Idempotent: a venv whose marker names the same requirements is reused as is; a half-made one
(killed install) has no marker and is rebuilt.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

VENVS = Path(__file__).resolve().parent / ".venvs"
MARKER = "bench-installed.txt"


@dataclass(frozen=True)
class Anchor:
    name: str
    requirements: tuple[str, ...]
    executable: str
    # If the plain install fails (PipelineWise pins old releases): the package with --no-deps, then these.
    fallback_deps: tuple[str, ...] = ()

    @property
    def venv(self) -> Path:
        return VENVS / self.name

    @property
    def command(self) -> Path:
        return self.venv / "bin" / self.executable

    def installed(self) -> bool:
        marker = self.venv / MARKER
        return self.command.exists() and marker.exists() and marker.read_text() == self._marker_text()

    def _marker_text(self) -> str:
        return "\n".join(self.requirements) + "\n"


ANCHORS: dict[str, Anchor] = {
    "meltanolabs": Anchor("meltanolabs", ("meltanolabs-target-postgres==0.8.1",), "target-postgres"),
    "pipelinewise": Anchor(
        "pipelinewise",
        ("pipelinewise-target-postgres==2.1.2",),
        "target-postgres",
        fallback_deps=(
            "pipelinewise-singer-python==1.*",
            "psycopg2-binary>=2.9.5",
            "inflection==0.3.1",
            "joblib>=1.2",
        ),
    ),
}


def _pip(anchor: Anchor, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(anchor.venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def ensure(anchor: Anchor, log: bool = True) -> Path:
    """The anchor's executable, installing its venv first if needed."""
    if anchor.installed():
        return anchor.command
    if anchor.venv.exists():
        shutil.rmtree(anchor.venv)
    python = shutil.which("python3") or sys.executable
    if log:
        print(f"setting up {anchor.name} in {anchor.venv} …", file=sys.stderr)
    subprocess.run([python, "-m", "venv", str(anchor.venv)], check=True)
    result = _pip(anchor, *anchor.requirements)
    if result.returncode != 0:
        if not anchor.fallback_deps:
            raise RuntimeError(
                f"pip install {' '.join(anchor.requirements)} failed:\n{result.stderr[-2000:]}"
            )
        print(f"{anchor.name}: plain install failed, retrying with --no-deps + pinned deps", file=sys.stderr)
        for args in (("--no-deps", *anchor.requirements), anchor.fallback_deps):
            retry = _pip(anchor, *args)
            if retry.returncode != 0:
                raise RuntimeError(f"pip install {' '.join(args)} failed:\n{retry.stderr[-2000:]}")
    (anchor.venv / MARKER).write_text(anchor._marker_text())
    return anchor.command


def setup(names: list[str] | None = None) -> None:
    for name in names or list(ANCHORS):
        command = ensure(ANCHORS[name])
        print(f"{name}: {command}", file=sys.stderr)
