"""Rich renderings of history for people; `--json` output lives beside the commands."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from flx.cli.history import ExecutionDetail, ExecutionRow

_STATUS_STYLE = {
    "succeeded": "green",
    "failed": "bold red",
    "failed_validation": "red",
    "timed_out": "red",
    "cancelled": "yellow",
    "skipped": "dim",
    "running": "cyan",
    "retrying": "cyan",
    "pending": "dim",
}


def status_text(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, ""))


def _when(value: datetime | None, short: bool = False) -> str:
    if not value:
        return "-"
    return value.astimezone().strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S")


def _duration(value: Decimal | None, short: bool = False) -> str:
    if value is None:
        return "-"
    seconds = float(value)
    if short:
        if seconds < 100:
            return f"{seconds:.1f}s"
        if seconds < 3600:
            return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
        return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds // 60:.0f} min {seconds % 60:.0f} s"


_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d[T ][\d:.,]+Z?\s+(\[\s*\w+\s*\]\s+)?")


def _last_line(text: str | None) -> str:
    """The line of an error that says most: its last (the exception after a traceback, Meltano's summary),
    without a log line's timestamp and level."""
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return re.sub(r"\s{2,}", " ", _LOG_PREFIX.sub("", lines[-1]))


def history_table(rows: list[ExecutionRow], width: int | None = None) -> Table:
    """One line per execution, whatever the width: the pipeline and the error are cut with an ellipsis.

    Below 110 columns times are shorter and the trigger is left out (`flx show` and `--json` have it).
    """
    short = width is not None and width < 110
    headers = ["execution", "status", "try", "exit", "started", "took", *([] if short else ["trigger"])]
    cells = [
        [
            _cut(f"{row.pipeline} #{row.execution_number}", 28 if short else 48),
            row.status,
            str(row.attempt),
            "-" if row.exit_code is None else str(row.exit_code),
            _when(row.started_at, short),
            _duration(row.duration_seconds, short),
            *([] if short else [_cut(row.trigger, 12)]),
        ]
        for row in rows
    ]
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(headers)]
    room = max((width or 200) - sum(widths) - 3 * len(headers), 5)  # each column: its width + 3
    table = Table(
        title="flx executions (newest first)",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for header in headers:
        right = header in ("try", "exit", "took")
        table.add_column(header, no_wrap=True, justify="right" if right else "left")
    table.add_column("error", no_wrap=True, overflow="ellipsis", max_width=room)
    for row, line in zip(rows, cells, strict=True):
        error = _cut(_last_line(row.error), room)
        table.add_row(line[0], status_text(row.status), *line[2:], error)
    return table


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _value(value: object) -> str:
    if isinstance(value, list):
        return " ".join(str(item) for item in value)
    return str(value)


def detail_view(detail: ExecutionDetail, width: int | None = None) -> Group:
    """`flx show`: the execution's facts, its events, and its stream loads and validations if any."""
    parts: list[Table] = [_facts(detail), _events(detail, width)]
    if detail.loads:
        parts.append(_loads(detail))
    if detail.validations:
        parts.append(_checks(detail))
    return Group(*parts)


def _facts(detail: ExecutionDetail) -> Table:
    row = detail.execution
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for label, value in (
        ("execution", f"{row.pipeline} #{row.execution_number}  ({row.id})"),
        ("status", status_text(row.status)),
        ("attempt", str(row.attempt)),
        ("exit code", "-" if row.exit_code is None else str(row.exit_code)),
        ("started", _when(row.started_at)),
        ("ended", _when(row.ended_at)),
        ("duration", _duration(row.duration_seconds)),
        ("meltano run id", str(detail.run_id or "-")),
        ("runner", f"pid {detail.pid} on {detail.hostname}"),
        ("error", row.error or "-"),
        ("log", f"flx logs {row.pipeline}#{row.execution_number}"),
    ):
        facts.add_row(label, value)
    return facts


def _events(detail: ExecutionDetail, width: int | None) -> Table:
    """One line an event; the details are cut to what the terminal has room for."""
    events = Table(title="events", header_style="bold", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    type_width = max((len(event.type) for event in detail.events), default=4)
    room = max((width or 200) - 3 - 19 - type_width - 3 * 4, 10)
    events.add_column("seq", justify="right", no_wrap=True)
    events.add_column("at", no_wrap=True)
    events.add_column("type", no_wrap=True)
    events.add_column("details", no_wrap=True, overflow="ellipsis", max_width=room)
    for event in detail.events:
        details = ", ".join(f"{k}={_value(v)}" for k, v in event.payload.items() if k != "error")
        events.add_row(str(event.seq), _when(event.at), status_text(event.type), _cut(details, room))
    return events


def _loads(detail: ExecutionDetail) -> Table:
    loads = Table(title="stream loads", header_style="bold")
    for column in ("stream", "table", "method", "inserted", "updated", "deleted", "status"):
        loads.add_column(column, justify="right" if column in {"inserted", "updated", "deleted"} else "left")
    for load in detail.loads:
        loads.add_row(
            load.stream,
            f"{load.schema_name}.{load.table_name}",
            load.load_method or "-",
            f"{load.rows_inserted:,}",
            f"{load.rows_updated:,}",
            f"{load.rows_deleted:,}",
            status_text(load.status),
        )
    return loads


def _checks(detail: ExecutionDetail) -> Table:
    checks = Table(title="validations", header_style="bold")
    for column in ("check", "kind", "status", "observed", "expected"):
        checks.add_column(column)
    for check in detail.validations:
        status = status_text(check.status)
        checks.add_row(check.check_name, check.kind, status, check.observed or "-", check.expected or "-")
    return checks
