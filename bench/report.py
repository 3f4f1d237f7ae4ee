"""Results: one row per loader (best of the repeats), as a rich table, JSON and a markdown table.

Loaders may run on different record counts (anchors on fewer), so the comparison is in records/s and the
ratio columns divide records/s, never wall times.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

MB = 1024 * 1024


@dataclass
class RunResult:
    loader: str
    description: str
    records: int
    repeat: int
    wall_seconds: float
    peak_rss_bytes: int
    row_count: int | None
    state_ok: bool | None  # None: the loader emits no STATE (psql)
    error: str | None
    warning: str | None = None  # loaded and timed, but something is worth a note (e.g. a lagging STATE)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def records_per_second(self) -> float:
        return self.records / self.wall_seconds if self.wall_seconds > 0 else 0.0


def best(results: list[RunResult]) -> list[RunResult]:
    """Per loader, in first-run order: the fastest successful repeat, else the last failure.

    Fastest rather than median because the noise here (other jobs on a 2-core machine) only ever slows
    a run down; all repeats stay in the JSON."""
    chosen: dict[str, RunResult] = {}
    for result in results:
        current = chosen.get(result.loader)
        if current is None or (result.ok and (not current.ok or result.wall_seconds < current.wall_seconds)):
            chosen[result.loader] = result
    return list(chosen.values())


def _ratio(result: RunResult, baseline: RunResult | None) -> str:
    if not result.ok or baseline is None or not baseline.ok or baseline.records_per_second == 0:
        return "-"
    return f"{result.records_per_second / baseline.records_per_second:.2f}x"


def rows(results: list[RunResult], baseline_anchor: str, baseline_flx: str) -> list[list[str]]:
    by_name = {r.loader: r for r in results}
    table: list[list[str]] = []
    for r in results:
        if r.ok:
            cells = [f"{r.wall_seconds:.1f}", f"{r.records_per_second:,.0f}", f"{r.peak_rss_bytes / MB:,.0f}"]
        else:
            cells = ["-", "-", "-"]
        check = f"FAILED: {r.error}" if not r.ok else f"ok, but {r.warning}" if r.warning else "ok"
        table.append(
            [
                r.loader,
                f"{r.records:,}",
                *cells,
                _ratio(r, by_name.get(baseline_anchor)),
                _ratio(r, by_name.get(baseline_flx)),
                check,
            ]
        )
    return table


def headers(baseline_anchor: str, baseline_flx: str) -> list[str]:
    return [
        "loader",
        "records",
        "wall s",
        "records/s",
        "peak RSS MB",
        f"vs {baseline_anchor}",
        f"vs {baseline_flx}",
        "check",
    ]


def print_table(title: str, results: list[RunResult], baseline_anchor: str, baseline_flx: str) -> None:
    table = Table(title=title)
    for i, header in enumerate(headers(baseline_anchor, baseline_flx)):
        table.add_column(header, justify="left" if i in (0, 7) else "right")
    for row in rows(results, baseline_anchor, baseline_flx):
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(table)


def markdown(
    title: str, notes: list[str], results: list[RunResult], baseline_anchor: str, baseline_flx: str
) -> str:
    head = headers(baseline_anchor, baseline_flx)
    lines = [f"### {title}", "", *[f"- {n}" for n in notes], ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("---" if i in (0, 7) else "---:" for i in range(len(head))) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows(results, baseline_anchor, baseline_flx)]
    lines += ["", "| loader | what |", "|---|---|"]
    lines += [f"| {r.loader} | {r.description} |" for r in results]
    return "\n".join(lines) + "\n"


def merge_previous(stem: Path, runs: list[RunResult], rerun: set[str]) -> list[RunResult]:
    """Earlier runs of loaders not rerun now are kept, so `--only` subsets add up to one table."""
    path = stem.with_suffix(".json")
    if not path.exists():
        return runs
    fields = set(RunResult.__dataclass_fields__)
    previous = json.loads(path.read_text()).get("runs", [])
    kept = [RunResult(**{k: v for k, v in run.items() if k in fields}) for run in previous]
    return [r for r in kept if r.loader not in rerun] + runs


def environment() -> dict[str, Any]:
    import os

    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}


def write(path_stem: Path, meta: dict[str, Any], all_runs: list[RunResult], md: str) -> tuple[Path, Path]:
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = path_stem.with_suffix(".json"), path_stem.with_suffix(".md")
    payload = meta | {"runs": [asdict(r) | {"records_per_second": r.records_per_second} for r in all_runs]}
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    md_path.write_text(md)
    return json_path, md_path
