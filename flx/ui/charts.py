"""Chart.js configurations built from query results; `static/app.js` only adds axis formatting and clicks.

Each function returns a JSON-able dict: `type`, `data` and `options` as Chart.js takes them, plus `flx`
hints for the page script (`x_time`: the x values are epoch milliseconds; the execution ids whose page
a click opens: `runs` per point, `dataset_runs` per dataset and point).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flx.ui.queries import DurationPoint, FailureDays, RecentRun, StreamRows

STATUS_COLOURS = {
    "succeeded": "#2e9e44",
    "failed": "#d64545",
    "failed_validation": "#e8842c",
    "timed_out": "#9b51e0",
    "cancelled": "#828a91",
    "skipped": "#b8c0c8",
    "pending": "#56a8e0",
    "running": "#2f80ed",
    "retrying": "#f2b824",
}
PALETTE = (
    "#2f80ed",
    "#e8842c",
    "#2e9e44",
    "#d64545",
    "#9b51e0",
    "#17a2b8",
    "#c2185b",
    "#8d6e63",
    "#5c6bc0",
    "#7cb342",
)
LEGEND_LIMIT = 8
Text = Callable[[str], str]


def colour(status: str) -> str:
    return STATUS_COLOURS.get(status, "#828a91")


def sparkline(recent: list[RecentRun]) -> dict[str, Any]:
    """Bars of the pipeline's recent durations, oldest left, coloured by status."""
    return {
        "type": "bar",
        "data": {
            "labels": [f"#{run.number} {run.status}" for run in recent],
            "datasets": [
                {
                    "data": [round(run.duration, 3) if run.duration is not None else 0 for run in recent],
                    "backgroundColor": [colour(run.status) for run in recent],
                    "barPercentage": 0.9,
                    "categoryPercentage": 1.0,
                    "minBarLength": 2,
                }
            ],
        },
        "options": {
            "responsive": False,
            "animation": False,
            "plugins": {"legend": {"display": False}},
            "scales": {"x": {"display": False}, "y": {"display": False, "beginAtZero": True}},
        },
        "flx": {"runs": [str(run.id) for run in recent], "y_seconds": True},
    }


def durations(
    points: list[DurationPoint], pipeline: str, redact: Text, since: datetime, until: datetime
) -> dict[str, Any]:
    """Duration of each finished run over time, one series per status so the legend explains colours."""
    by_status: dict[str, list[DurationPoint]] = {}
    for point in points:
        by_status.setdefault(point.status, []).append(point)
    datasets = []
    runs: list[list[str]] = []
    for status, group in sorted(by_status.items()):
        datasets.append(
            {
                "label": status,
                "data": [[int(p.at.timestamp() * 1000), round(p.duration, 3)] for p in group],
                "backgroundColor": colour(status),
                "borderColor": colour(status),
                "pointRadius": 3 if len(points) < 500 else 2,
                "showLine": False,
            }
        )
        runs.append([str(p.id) for p in group])
    return {
        "type": "scatter",
        "data": {"datasets": datasets},
        "options": {
            "animation": False,
            "maintainAspectRatio": False,
            "plugins": {"title": {"display": True, "text": f"{redact(pipeline)}: duration per run"}},
            "scales": {
                "x": {
                    "type": "linear",
                    **_bounds(points, since, until),
                    "title": {"display": True, "text": "started"},
                },
                "y": {"beginAtZero": True, "title": {"display": True, "text": "seconds"}},
            },
        },
        "flx": {"x_time": True, "dataset_runs": runs, "y_seconds": True},
    }


def _bounds(points: list[DurationPoint], since: datetime, until: datetime) -> dict[str, int]:
    """The x range in epoch ms: the runs' own span with a margin, within the chosen window."""
    if not points:
        return {"min": int(since.timestamp() * 1000), "max": int(until.timestamp() * 1000)}
    first, last = points[0].at.timestamp(), points[-1].at.timestamp()
    margin = max((last - first) * 0.03, 60.0)
    low, high = max(first - margin, since.timestamp()), min(last + margin, until.timestamp())
    return {"min": int(low * 1000), "max": int(max(high, low + 60) * 1000)}


def stream_rows(rows: StreamRows, pipeline: str, redact: Text) -> dict[str, Any]:
    """Rows written per stream in each recent run, stacked."""
    return {
        "type": "bar",
        "data": {
            "labels": [f"#{number}" for _, number in rows.runs],
            "datasets": [
                {"label": redact(stream), "data": counts, "backgroundColor": PALETTE[i % len(PALETTE)]}
                for i, (stream, counts) in enumerate(rows.streams.items())
            ],
        },
        "options": {
            "animation": False,
            "maintainAspectRatio": False,
            "plugins": {
                "title": {"display": True, "text": f"{redact(pipeline)}: rows loaded per stream per run"}
            },
            "scales": {
                "x": {"stacked": True, "title": {"display": True, "text": "run"}},
                "y": {
                    "stacked": True,
                    "beginAtZero": True,
                    "ticks": {"precision": 0},
                    "title": {"display": True, "text": "rows"},
                },
            },
        },
        "flx": {"runs": [str(run_id) for run_id, _ in rows.runs]},
    }


def failures(days: FailureDays, redact: Text) -> dict[str, Any]:
    """Failed, failed-validation and timed-out runs per day, stacked by pipeline."""
    return {
        "type": "bar",
        "data": {
            "labels": days.days,
            "datasets": [
                {"label": redact(name), "data": counts, "backgroundColor": PALETTE[i % len(PALETTE)]}
                for i, (name, counts) in enumerate(days.pipelines.items())
            ],
        },
        "options": {
            "animation": False,
            "maintainAspectRatio": False,
            "plugins": {
                "title": {"display": True, "text": "failures per day (UTC), all pipelines"},
                # Past a few pipelines the legend would crowd out the bars: the tooltip names them.
                "legend": {"display": len(days.pipelines) <= LEGEND_LIMIT, "labels": {"boxWidth": 12}},
                "tooltip": {"mode": "index", "intersect": False},
            },
            "scales": {
                "x": {"stacked": True},
                "y": {"stacked": True, "beginAtZero": True, "ticks": {"precision": 0}},
            },
        },
        "flx": {"tooltip_nonzero": True},
    }
