"""A refused record as data — which record, which property, why, the value — and the one place its words
are made.

Decoding (codec.py) and encoding (copybin.py) report a `Failure`; the batch (batch.py) decides from its
fields (never from its text) whether a column is widened, a key is missing, or the run stops. `message`
writes the line a user reads; `from_msgspec` is the only reader of msgspec's error text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from target_flx.pgbinary import UUID_PATTERN
from target_flx.reasons import EncodeFailure, Reason


@dataclass(frozen=True)
class Failure:
    """The first record of a batch that cannot be loaded as it is."""

    index: int  # the record's position in the lines decoded (or the messages encoded)
    field: str | None  # the property (a metadata column's name; None: the whole line)
    reason: Reason
    detail: str = ""  # per reason, see `Reason`
    got: str = ""
    shown: str | None = None  # the value as JSON text, cut short; None: not shown (a secret, or unknown)

    @property
    def message(self) -> str:
        return message(self)

    @property
    def null_or_missing(self) -> bool:
        """Whether the property was missing or null (for a key property, that is its own error)."""
        return self.reason is Reason.MISSING_FIELD or self.shown == "null" or self.got == "null"


def encoded(failure: EncodeFailure, field: str, shown: str | None) -> Failure:
    """The record-level failure of a value the encoder refused (`shown`: the value, unless secret)."""
    return Failure(failure.row, field, failure.reason, failure.detail, failure.got, shown)


# Reasons whose `got` is a type's name ("got str"): the value follows it ("got str "two"").
_GOT_A_TYPE = frozenset(
    {Reason.SCHEMA, Reason.NOT_AN_INTEGER, Reason.NOT_BASE16, Reason.NOT_AN_ARRAY, Reason.NESTED_ELEMENT}
)


def message(failure: Failure) -> str:
    """The words for a failure: what was expected, then the value (`…, got "two"`) when it is shown."""
    text = _text(failure)
    shown = failure.shown
    if shown is None or failure.reason is Reason.SPECIAL_NUMBER:
        return text
    if failure.got and failure.reason in _GOT_A_TYPE:
        return f"{text} {shown}"
    return f"{text}, got {shown}"


def _text(failure: Failure) -> str:
    reason, detail, got = failure.reason, failure.detail, failure.got
    got_part = f", got {got}" if got else ""
    match reason:
        case Reason.INVALID:
            return detail
        case Reason.NOT_AN_INTEGER:
            return f"expected an integer{got_part}"
        case Reason.OUT_OF_RANGE:
            return "integer out of range for its column"
        case Reason.NOT_A_NUMBER:
            return "Expected a number"
        case Reason.REAL_OUT_OF_RANGE:
            return "number out of range for real"
        case Reason.NUMERIC_OUT_OF_RANGE:
            return "numeric value out of range (PostgreSQL's numeric limits)"
        case Reason.LONE_SURROGATE:
            return "text is not valid Unicode (a lone surrogate)"
        case Reason.NOT_A_UUID:  # what the strict decoder says of the same value
            return f"Expected str matching regex {UUID_PATTERN!r}"
        case Reason.NOT_BASE16:
            return f"Expected base16 text{got_part}" if got else "Expected base16 (hex) text"
        case Reason.NOT_BASE64:
            return "Expected base64 text"
        case Reason.NOT_AN_ARRAY:
            return f"Expected an array{got_part}"
        case Reason.NESTED_ELEMENT:
            return f"Expected an array of scalars{got_part}"
        case Reason.BAD_ELEMENT:
            return f"Expected {detail} elements{got_part}"
        case Reason.SCHEMA:
            return f"{detail}{got_part}"
        case Reason.BOUND:
            return f"Expected int {detail}"
        case Reason.MISSING_FIELD:
            return f"Object missing required field {detail}"
        case Reason.MALFORMED_JSON:
            return f"malformed JSON ({detail})"
        case Reason.TOO_DEEP:
            return "record nested too deeply to decode"
        case Reason.SPECIAL_NUMBER:
            return f"{failure.shown} does not fit a {detail} column (a {got} property)"
        case Reason.SPECIAL_IN_JSON:
            return "a NaN or Infinity inside a JSON value cannot be stored"
    raise AssertionError(reason)


_ERROR_AT = re.compile(
    r"^(?P<msg>.*?)(?: - at `\$\[(?P<index>\d+)\](?:\.record)?(?:\.(?P<field>.*))?`)?$", re.S
)
_MISSING = re.compile(r"Object missing required field `(?P<name>[^`]*)`")
_BOUND = re.compile(r"Expected int (?P<bound>[<>]=? -?[0-9]+)")
_GOT = re.compile(r"(?P<expected>.*), got (?P<got>[A-Za-z_ ]+)", re.S)


def from_msgspec(text: str) -> Failure:
    """msgspec's validation error (`Expected `int`, got `str` - at `$[2].record.id``) as a `Failure` of
    the batch's record 2, property `id`."""
    match = _ERROR_AT.match(text)
    assert match is not None
    index = int(match.group("index") or 0)
    raw, field = match.group("msg"), match.group("field")
    if (missing := _MISSING.fullmatch(raw)) is not None:
        return Failure(index, field or missing.group("name"), Reason.MISSING_FIELD, missing.group("name"))
    humane = raw.replace("`", "")
    if (bound := _BOUND.fullmatch(humane)) is not None:
        return Failure(index, field, Reason.BOUND, bound.group("bound"))
    if (got := _GOT.fullmatch(humane)) is not None:
        return Failure(index, field, Reason.SCHEMA, got.group("expected"), got.group("got"))
    return Failure(index, field, Reason.SCHEMA, humane)
