"""Running the real target-flx under faults and checking its STATE promise.

The promise: a STATE goes out only once every record before it is committed, so a run resumed from its
last emitted STATE loses and duplicates nothing. Each STATE the target prints is checked against the
database as soon as it is read (committed rows only grow, so a later check can miss a violation but never
invent one); a trial then resumes from the last emitted STATE until the input is complete and compares the
table with what the tap sent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tests.faults.generator import NOTE_PREFIX, NOTE_SUFFIX, Feed, Rendering, bookmarks_of, write_paced
from tests.pipes import closing_pipes

TARGET_EXE = Path(sys.executable).with_name("target-flx")
TARGET_APP = "flx-fault-target"  # the target's application_name, so its sessions can be found
CHECK_APP = "flx-fault-check"
RUN_TIMEOUT = 20.0  # seconds a run may take to exit once its input has ended
INPUT_TIMEOUT = 60.0  # seconds a run may take to read its whole input
PACED_CHUNK = 24 * 1024
PACED_PAUSE = 0.01


# -- a private PostgreSQL cluster -----------------------------------------------------------------


def find_pg_bin() -> Path | None:
    """PostgreSQL's server binaries: FLX_PG_BIN, else the newest /usr/lib/postgresql/*/bin, else PATH."""
    if env := os.environ.get("FLX_PG_BIN"):
        return Path(env)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if versions and (versions[-1] / "pg_ctl").exists():
        return versions[-1]
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _as_owner(cmd: Sequence[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run server commands as `postgres`."""
    if os.geteuid() != 0:
        return list(cmd)
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *cmd]
    return ["su", "postgres", "-c", " ".join(f"'{part}'" for part in cmd)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """A throwaway PostgreSQL server that the fault tests may restart, crash and kill sessions on."""

    bin_dir: Path
    root: Path
    port: int
    database: str = "faults"
    user: str = "postgres"
    host: str = "127.0.0.1"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def pg_ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.root / "server.log")]
        return subprocess.run(
            _as_owner([*cmd, *args]),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
            start_new_session=True,
        )

    def conninfo(self, database: str | None = None, application_name: str = CHECK_APP) -> str:
        return psycopg.conninfo.make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=database or self.database,
            application_name=application_name,
            connect_timeout=3,
        )

    def target_config(self, schema: str, **overrides: Any) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "database": self.database,
            "default_target_schema": schema,
            "application_name": TARGET_APP,
            "batch_size_rows": 5000,
            **overrides,
        }

    def restart(self, mode: str) -> None:
        self.pg_ctl("-m", mode, "-w", "-t", "60", "restart")

    def terminate_target(self) -> int:
        """End every session of the target; returns how many there were."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid()",
                (TARGET_APP,),
            ).fetchall()
        return len(rows)

    def query(self, statement: sql.Composable | str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            cursor = conn.execute(statement, params or None)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description is not None else []


@contextmanager
def private_cluster(bin_dir: Path) -> Iterator[Cluster]:
    """initdb, start, yield, and always `stop -m immediate` and remove the directory."""
    root = Path(tempfile.mkdtemp(prefix="flx-faults-"))
    cluster = Cluster(bin_dir, root, _free_port())
    try:
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        subprocess.run(
            _as_owner(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(cluster.data_dir),
                    "-A",
                    "trust",
                    "-U",
                    cluster.user,
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            capture_output=True,
            check=True,
            timeout=120,
        )
        settings = {
            "port": str(cluster.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{root}'",
            "fsync": "off",  # the OS keeps what PostgreSQL wrote; only a machine crash would lose it
            "full_page_writes": "off",
            "shared_buffers": "32MB",
            "max_connections": "40",
            "log_min_messages": "warning",
        }
        conf = "".join(f"{name} = {value}\n" for name, value in settings.items())
        subprocess.run(
            _as_owner(["sh", "-c", f"cat >> '{cluster.data_dir}/postgresql.conf'"]),
            input=conf,
            text=True,
            check=True,
            timeout=30,
        )
        cluster.pg_ctl("-w", "-t", "60", "start")
        with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(cluster.database)))
        yield cluster
    finally:
        with suppress(Exception):
            cluster.pg_ctl("-m", "immediate", "-w", "stop", timeout=30)
        shutil.rmtree(root, ignore_errors=True)


# -- what stderr may hold ---------------------------------------------------------------------------

_LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \| (\w+)\s*\|")
_SUMMARY = re.compile(r"^target-flx: (no streams in the input|[\d,]+ records in )")
_TABLE_CHARS = "┏┃┡│└┗┣╇━"
_LINE_REF = re.compile(r"\blines? (\d+)(?:\s*-\s*(\d+))?")


def report_lines(stderr: str) -> list[str]:
    """The lines of stderr that a person has to read: not routine log records (INFO/WARNING/DEBUG with
    their continuation lines) and not the end-of-run summary table."""
    kept: list[str] = []
    in_routine_record = False
    for line in stderr.splitlines():
        if not line.strip():
            continue
        if match := _LOG_RECORD.match(line):
            in_routine_record = match.group(1) in ("DEBUG", "INFO", "WARNING")
            if not in_routine_record:
                kept.append(line)
            continue
        if _SUMMARY.match(line) or line.lstrip()[:1] in _TABLE_CHARS:
            in_routine_record = False
            continue
        if in_routine_record and not line.startswith("target-flx:"):
            continue
        in_routine_record = False
        kept.append(line)
    return kept


def traceback_summary(stderr: str) -> str | None:
    """The exception line of the first traceback in stderr, if there is one."""
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        if "Traceback" in line:
            for later in lines[i + 1 :]:
                if later and not later.startswith((" ", "\t")) and "Traceback" not in later:
                    return f"{line.strip()} ... {later.strip()[:300]}"
            return line.strip()
    return None


def names_line(message: str, line: int) -> bool:
    """Whether an error message names input line `line` (or a range of lines holding it)."""
    for match in _LINE_REF.finditer(message):
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if first <= line <= last:
            return True
    return False


def stderr_problems(
    stderr: str,
    *,
    line: int | Collection[int] | None = None,
    mentions: str | None = None,
    max_lines: int = 3,
) -> list[str]:
    """A failed run must say why in one line: the last line `target-flx: error: ...`, no traceback, at most
    `max_lines` lines beyond routine logging, and (when given) naming the input line (one of `line`)."""
    problems = []
    if tb := traceback_summary(stderr):
        problems.append(f"traceback in stderr: {tb}")
    nonempty = [ln for ln in stderr.splitlines() if ln.strip()]
    last = nonempty[-1] if nonempty else ""
    if not last.startswith("target-flx: error:"):
        problems.append(f"last stderr line is not `target-flx: error: ...`: {last[:300]!r}")
    shown = report_lines(stderr)
    if len(shown) > max_lines:
        problems.append(
            f"{len(shown)} lines of error output (at most {max_lines} expected): "
            + " | ".join(s[:160] for s in shown[:6])
        )
    if last.startswith("target-flx: error:"):
        wanted = [line] if isinstance(line, int) else sorted(line or ())
        if wanted and not any(names_line(last, n) for n in wanted):
            which = " or ".join(map(str, wanted))
            problems.append(f"error line does not name input line {which}: {last[:300]!r}")
        if mentions is not None and mentions not in last:
            problems.append(f"error line does not mention {mentions!r}: {last[:300]!r}")
    return problems


def last_stderr_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "(empty stderr)"


# -- one run of the target --------------------------------------------------------------------------


def committed_up_to(
    conn: psycopg.Connection[Any], schema: str, stream: str, bookmark: int, after: int = 0
) -> int:
    """How many distinct ids in after+1..bookmark the stream's table holds (0 while it does not exist)."""
    statement = sql.SQL("SELECT count(DISTINCT id) FROM {}.{} WHERE id > %s AND id <= %s").format(
        sql.Identifier(schema), sql.Identifier(stream)
    )
    try:
        row = conn.execute(statement, (after, bookmark)).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


class StateWatch(threading.Thread):
    """Reads the target's stdout; checks every STATE against the database as soon as it is read. Only
    the ids this run was sent (past `after`) are counted, so a loss in an earlier run is not blamed on
    this one."""

    def __init__(
        self, stdout: Any, conninfo: str | None, schema: str, after: Mapping[str, int] | None = None
    ) -> None:
        super().__init__(daemon=True)
        self.stdout = stdout
        self.conninfo = conninfo
        self.schema = schema
        self.after = dict(after or {})
        self.states: list[Any] = []
        self.violations: list[str] = []
        self.conn: psycopg.Connection[Any] | None = None

    def run(self) -> None:
        try:
            for raw in self.stdout:
                if not raw.strip():
                    continue
                try:
                    value = json.loads(raw)
                except ValueError:
                    self.violations.append(f"stdout line is not JSON: {raw[:200]!r}")
                    continue
                self.states.append(value)
                if self.conninfo is not None:
                    self.check(value)
        finally:
            if self.conn is not None:
                with suppress(Exception):
                    self.conn.close()

    def check(self, value: Any) -> None:
        try:
            marks = bookmarks_of(value)
        except (KeyError, TypeError, ValueError):
            self.violations.append(f"STATE is not one the tap sent: {value!r}")
            return
        deadline = time.monotonic() + 30  # the server may be restarting: check once it is back
        while True:
            try:
                if self.conn is None or self.conn.closed:
                    assert self.conninfo is not None
                    self.conn = psycopg.connect(self.conninfo, autocommit=True)
                for stream, bookmark in marks.items():
                    after = min(self.after.get(stream, 0), bookmark)
                    have = committed_up_to(self.conn, self.schema, stream, bookmark, after)
                    if have < bookmark - after:
                        self.violations.append(
                            f"STATE ahead of committed rows: STATE {json.dumps(value)} printed while only "
                            f"{have} of {stream} ids {after + 1}..{bookmark} were committed"
                        )
                return
            except psycopg.OperationalError as exc:
                if self.conn is not None:
                    with suppress(Exception):
                        self.conn.close()
                    self.conn = None
                if time.monotonic() > deadline:
                    self.violations.append(f"could not check STATE {json.dumps(value)}: {exc}")
                    return
                time.sleep(0.2)


@dataclass
class RunOutcome:
    returncode: int | None  # None: it did not exit in time and was killed
    states: list[Any]
    violations: list[str]
    stderr: str
    written: int
    input_size: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def input_complete(self) -> bool:
        return self.written == self.input_size

    @property
    def last_state(self) -> Any:
        return self.states[-1] if self.states else None


@dataclass
class Fault:
    """Something done to the target or its server once the tap has written `at` bytes."""

    at: int
    action: Callable[[subprocess.Popen[bytes]], str]
    label: str


def run_target(
    config: dict[str, Any],
    workdir: Path,
    data: bytes,
    *,
    conninfo: str | None,
    paced: bool,
    fault: Fault | None = None,
    hold: tuple[int, float] | None = None,
    env: dict[str, str] | None = None,
    after: Mapping[str, int] | None = None,
) -> RunOutcome:
    """Run target-flx once on `data`, as Meltano does, checking each STATE it prints."""
    workdir.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    config_path = workdir / f"config-{run_id}.json"
    config_path.write_text(json.dumps(config))
    stderr_path = workdir / f"stderr-{run_id}.txt"
    started = time.monotonic()
    with stderr_path.open("wb") as stderr_file:
        proc = closing_pipes(
            subprocess.Popen(
                [str(TARGET_EXE), "--config", str(config_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr_file,
                env={**os.environ, "FLX_DEBUG": "0", **(env or {})},
            )
        )
    assert proc.stdin is not None and proc.stdout is not None
    watch = StateWatch(proc.stdout, conninfo, str(config["default_target_schema"]), after)
    watch.start()
    notes: list[str] = []
    fault_threads: list[threading.Thread] = []
    fired = threading.Event()

    def fire() -> None:
        assert fault is not None
        try:
            notes.append(fault.action(proc))
        except Exception as exc:
            notes.append(f"{fault.label} failed: {type(exc).__name__}: {exc}")

    def on_progress(written: int) -> None:
        if fault is not None and not fired.is_set() and written >= fault.at:
            fired.set()
            thread = threading.Thread(target=fire, daemon=True)
            fault_threads.append(thread)
            thread.start()

    written = 0
    stdin = proc.stdin

    def feed() -> None:
        nonlocal written
        written = write_paced(
            stdin.fileno(),
            data,
            chunk=PACED_CHUNK if paced else 1 << 20,
            pause=PACED_PAUSE if paced else 0.0,
            hold=hold,
            on_progress=on_progress,
        )
        with suppress(OSError):
            stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    writer.join(INPUT_TIMEOUT)
    hung = writer.is_alive()
    if hung:
        notes.append(f"did not read its input within {INPUT_TIMEOUT:.0f} s: killed")
        proc.kill()
    try:
        returncode: int | None = proc.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        notes.append(f"did not exit within {RUN_TIMEOUT:.0f} s of the end of its input: killed")
        proc.kill()
        proc.wait()
        returncode = None
    if hung:
        returncode = None
    writer.join(5)
    for thread in fault_threads:
        thread.join(90)
    watch.join(60)
    return RunOutcome(
        returncode=returncode,
        states=watch.states,
        violations=watch.violations,
        stderr=stderr_path.read_text(errors="replace"),
        written=written,
        input_size=len(data),
        seconds=time.monotonic() - started,
        notes=notes,
    )


# -- trials -----------------------------------------------------------------------------------------


@dataclass
class FirstRun:
    """How a trial's first run goes wrong, and what it must do about it."""

    label: str
    render: Callable[[Feed], Rendering] = lambda feed: feed.render()
    fault: Callable[[Rendering], Fault | None] = lambda _r: None
    cut: Callable[[Rendering], tuple[bytes, int]] | None = None  # the tap dies mid-line
    expect: Callable[[RunOutcome, Rendering, int | None], list[str]] = lambda _o, _r, _line: []


@dataclass
class TrialReport:
    label: str
    problems: list[str]
    summary: str


def sigkill(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is not None:
        return f"SIGKILL: the target had already exited ({proc.returncode})"
    proc.send_signal(signal.SIGKILL)
    return "SIGKILL sent"


def sigterm(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is not None:
        return f"SIGTERM: the target had already exited ({proc.returncode})"
    proc.send_signal(signal.SIGTERM)
    return "SIGTERM sent"


class Lab:
    """Trials against the private cluster, each in its own schema."""

    def __init__(self, cluster: Cluster, workdir: Path) -> None:
        self.cluster = cluster
        self.workdir = workdir

    def new_schema(self) -> str:
        return f"f_{uuid.uuid4().hex[:10]}"

    def run(self, schema: str, data: bytes, *, batch_size_rows: int = 5000, **kwargs: Any) -> RunOutcome:
        config = self.cluster.target_config(schema, batch_size_rows=batch_size_rows)
        return run_target(config, self.workdir / schema, data, conninfo=self.cluster.conninfo(), **kwargs)

    def trial(
        self, feed: Feed, first: FirstRun, *, batch_size_rows: int = 3000, max_resumes: int = 3
    ) -> TrialReport:
        """First run with the fault, then resume from the last emitted STATE until a run completes."""
        schema = self.new_schema()
        problems: list[str] = []
        outcomes: list[RunOutcome] = []
        rendering = first.render(feed)
        data, cut_line = first.cut(rendering) if first.cut else (rendering.data, None)
        outcome = self.run(
            schema, data, batch_size_rows=batch_size_rows, paced=True, fault=first.fault(rendering)
        )
        outcomes.append(outcome)
        problems += [f"run 1: {p}" for p in outcome.violations + first.expect(outcome, rendering, cut_line)]
        if outcome.returncode == 0 and not outcome.input_complete:
            problems.append(f"run 1: exit 0 after reading {outcome.written} of {outcome.input_size} bytes")
        after: dict[str, int] = {}
        whole = first.cut is None and rendering.bad_line is None  # the first run got the tap's valid input
        finished = self._completed(outcome, whole)
        while not finished and len(outcomes) <= max_resumes:
            if outcome.last_state is not None:
                try:
                    after = bookmarks_of(outcome.last_state)
                except (KeyError, TypeError, ValueError):
                    problems.append(f"run {len(outcomes)}: cannot resume from STATE {outcome.last_state!r}")
                    break
            outcome = self.run(
                schema, feed.render(after).data, batch_size_rows=batch_size_rows, paced=False, after=after
            )
            outcomes.append(outcome)
            n = len(outcomes)
            problems += [f"run {n} (resume): {p}" for p in outcome.violations]
            if outcome.returncode != 0:
                problems.append(
                    f"run {n} (resume from {after}): exit {outcome.returncode}: "
                    f"{last_stderr_line(outcome.stderr)} {outcome.notes or ''}".rstrip()
                )
            finished = self._completed(outcome, True)
        for n, o in enumerate(outcomes, start=1):
            if (tb := traceback_summary(o.stderr)) and not any(
                p.startswith(f"run {n}") and "traceback" in p for p in problems
            ):
                problems.append(f"run {n}: traceback in stderr (exit {o.returncode}): {tb}")
            if o.returncode is None:
                problems.append(f"run {n}: {'; '.join(o.notes)}")
        if not finished:
            problems.append(f"input not completed after {len(outcomes)} runs")
        else:
            final = outcomes[-1].last_state
            if final != feed.final_state():
                problems.append(f"last STATE of the completing run is {final!r}, not the tap's final one")
        table_problems, duplicates = self.check_tables(schema, feed, len(outcomes), batch_size_rows)
        problems += table_problems
        runs = ", ".join(
            f"exit {o.returncode} {len(o.states)} STATEs {o.seconds:.1f}s"
            + (f" [{'; '.join(o.notes)}]" if o.notes else "")
            for o in outcomes
        )
        summary = f"{first.label} {feed.variant}: {runs}" + (f"; {duplicates}" if duplicates else "")
        return TrialReport(first.label, [f"{first.label} ({feed.variant}): {p}" for p in problems], summary)

    @staticmethod
    def _completed(outcome: RunOutcome, whole_input: bool) -> bool:
        return outcome.returncode == 0 and outcome.input_complete and whole_input

    def check_tables(self, schema: str, feed: Feed, runs: int, batch_size_rows: int) -> tuple[list[str], str]:
        """Keyed: exactly ids 1..N once each. Append-only: every id, none more often than the runs that
        sent it. Both: every value exactly what the tap sent."""
        problems: list[str] = []
        duplicates = []
        n = feed.per_stream
        for stream in feed.streams:
            table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(stream))
            try:
                rows, distinct, in_range, high, most, wrong = self.cluster.query(
                    sql.SQL(
                        "SELECT count(*), count(DISTINCT id),"
                        " count(DISTINCT id) FILTER (WHERE id BETWEEN 1 AND %s), max(id),"
                        " (SELECT coalesce(max(c), 0) FROM (SELECT count(*) AS c FROM {t} GROUP BY id) g),"
                        " count(*) FILTER (WHERE id IS NULL"
                        " OR amount IS DISTINCT FROM mod(id * 37, 100000)::numeric / 100"
                        " OR ordered_at IS DISTINCT FROM"
                        " timestamptz '2024-03-01 10:00:00+02' + id * interval '1 s'"
                        " OR note IS DISTINCT FROM %s || id || %s OR paid IS DISTINCT FROM (mod(id, 2) = 0))"
                        " FROM {t}"
                    ).format(t=table),
                    n,
                    NOTE_PREFIX,
                    NOTE_SUFFIX,
                )[0]
            except psycopg.Error as exc:
                problems.append(f"{stream}: could not read the table: {str(exc).strip()[:200]}")
                continue
            if in_range < n:
                problems.append(f"{stream}: {n - in_range} of ids 1..{n} missing (lost records)")
            if wrong:
                problems.append(f"{stream}: {wrong} rows whose values differ from what the tap sent")
            if feed.keys:
                if (rows, distinct, high) != (n, n, n):
                    problems.append(
                        f"{stream}: {rows} rows, {distinct} distinct ids, max id {high}; "
                        f"expected exactly ids 1..{n} once each"
                    )
            else:
                if high is not None and high > n:
                    problems.append(f"{stream}: ids beyond {n}")
                if most > runs:
                    problems.append(f"{stream}: an id loaded {most} times by {runs} runs")
                duplicates.append(
                    f"{stream}: {rows - distinct} duplicate rows = {(rows - distinct) / batch_size_rows:.2f} "
                    f"batches of {batch_size_rows} (max {most} copies of an id)"
                )
        return problems, "; ".join(duplicates)
