"""Why a value or a line is refused, as a code: the vocabulary encoders and decoders share.

A refusal travels as a `Reason` and a few fields (never as English to be parsed again); the words a user
reads are made from them in one place, `failures.message`. The C encoder returns the numbers of the
reasons it finds itself (its `enum Reason`, exported as `_copybin.REASONS`; a test checks they agree).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Reason(enum.IntEnum):
    """What is wrong. Per reason, what `detail` and `got` hold (empty when not said)."""

    INVALID = 0  # another library refused the value: `detail` is its text
    # found by the encoders (kinds.py, pgbinary.py, _copybin.c)
    NOT_AN_INTEGER = 1  # got: the value's type
    OUT_OF_RANGE = 2  # an integer beyond its column's type
    NOT_A_NUMBER = 3  # (JSON null where the schema allows no null, a string, a boolean, sNaN)
    REAL_OUT_OF_RANGE = 4
    NUMERIC_OUT_OF_RANGE = 5  # beyond PostgreSQL's numeric limits
    LONE_SURROGATE = 6  # text that is not valid Unicode
    NOT_A_UUID = 7
    NOT_BASE16 = 8  # got: the value's type when it is not text
    NOT_BASE64 = 9
    NOT_AN_ARRAY = 10  # got: the JSON value's type
    NESTED_ELEMENT = 11  # an array or object inside a scalar array; got: its type
    BAD_ELEMENT = 12  # an array element its element type cannot parse; detail: that type, got: the element
    # found by the decoder (codec.py)
    SCHEMA = 20  # msgspec refused the value: detail is what it expected, got the type it found
    BOUND = 21  # an integer beyond a bound: detail is the bound ("<= 10")
    MISSING_FIELD = 22  # a required property is missing: detail is its name
    MALFORMED_JSON = 23  # detail: the parser's text
    TOO_DEEP = 24  # nested too deeply to decode
    SPECIAL_NUMBER = 25  # NaN or ±Infinity where the column cannot hold it: detail the column type, got the
    # property's JSON kind
    SPECIAL_IN_JSON = 26  # NaN or ±Infinity inside a JSON value


class Invalid(ValueError):
    """Raised by a value encoder for a value its column cannot take; the batch encoder turns it into an
    `EncodeFailure` naming the row and column."""

    def __init__(self, reason: Reason, *, detail: str = "", got: str = "") -> None:
        super().__init__(reason, detail, got)
        self.reason = reason
        self.detail = detail
        self.got = got


@dataclass(frozen=True)
class EncodeFailure:
    """What the batch encoder returns for the first value it cannot encode: where it is (the record's
    position in the batch, the column's in the plan), why, and the value."""

    row: int
    column: int
    reason: Reason
    value: Any
    detail: str = ""
    got: str = ""
