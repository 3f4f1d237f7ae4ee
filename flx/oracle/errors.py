"""Sorting Oracle failures into what an operator does about them: network, credentials, slowness, other.

python-oracledb raises exceptions whose first argument is its `_Error`, carrying `full_code` ("DPY-6005",
"ORA-01017") and `isrecoverable`. Thin mode rewrites some ORA codes into DPY ones (ORA-03113 becomes
DPY-4011 with the original `code` kept), so both the full code and the ORA number are looked at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Category = Literal["connectivity", "authentication", "timeout", "other"]
FailureSeverity = Literal["warning", "error", "critical"]

CONNECTIVITY = frozenset(
    {
        "DPY-6005",  # cannot connect (refused, unreachable, reset)
        "DPY-6000",  # listener refused the connection
        "DPY-6001",  # service not registered with the listener
        "DPY-6006",  # invalid server name
        "DPY-4011",  # the database or network closed the connection: the link died, not the query
        "DPY-1001",  # not connected
        "ORA-12541",  # no listener
        "ORA-12514",  # service unknown to the listener
        "ORA-12170",  # TNS connect timeout: nothing answered on the network
        "ORA-03113",  # end-of-file on communication channel
        "ORA-03114",  # not connected
        "ORA-12537",
        "ORA-12547",
    }
)
AUTHENTICATION = frozenset(
    {
        "ORA-01017",  # invalid username/password
        "ORA-28000",  # account locked
        "ORA-28001",  # password expired
        "ORA-01005",  # null password
        "ORA-01045",  # lacks CREATE SESSION
        "DPY-4001",  # no credentials given
    }
)
TIMEOUT = frozenset(
    {
        "DPY-4024",  # call timeout exceeded (our call_timeout)
        "DPY-4005",  # no pool connection within the wait timeout
        "ORA-03136",  # inbound connection timed out
        "ORA-01013",  # user requested cancel: what a call timeout looks like server-side
    }
)

SEVERITY: dict[Category, FailureSeverity] = {
    "connectivity": "error",
    "authentication": "critical",
    "timeout": "warning",
    "other": "error",
}


class OracleConfigError(ValueError):
    """A source's settings cannot work; the message names the source and the setting, never a secret."""


@dataclass(frozen=True)
class OracleFailure:
    category: Category
    code: str | None
    recoverable: bool
    severity: FailureSeverity
    message: str


def one_line(text: str, limit: int = 400) -> str:
    """Oracle messages span lines (cause, "Help:" URL); alerts and logs want the meaning on one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("Help:")]
    flat = " / ".join(lines)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _codes(error: object) -> tuple[str | None, set[str]]:
    full_code = getattr(error, "full_code", "") or None
    codes = {full_code} if full_code else set()
    number = getattr(error, "code", 0)
    if isinstance(number, int) and number:
        codes.add(f"ORA-{number:05d}")
    return full_code, codes


def classify(exc: BaseException) -> OracleFailure:
    """Never raises: whatever comes in, something an alert can be built from comes out."""
    error = exc.args[0] if exc.args and hasattr(exc.args[0], "full_code") else None
    if error is not None:
        full_code, codes = _codes(error)
        message = one_line(str(getattr(error, "message", None) or error))
        recoverable = bool(getattr(error, "isrecoverable", False))
    else:
        full_code, codes = None, set()
        message = one_line(f"{type(exc).__name__}: {exc}")
        recoverable = False

    category: Category
    if codes & AUTHENTICATION:
        category = "authentication"
    elif codes & TIMEOUT or isinstance(exc, TimeoutError):
        category = "timeout"
    elif codes & CONNECTIVITY or (error is None and isinstance(exc, OSError)):
        category = "connectivity"
    else:
        category = "other"
    # a dead link or a slow call is worth retrying even when the driver does not say so
    recoverable = recoverable or category in ("connectivity", "timeout")
    return OracleFailure(category, full_code, recoverable, SEVERITY[category], message)
