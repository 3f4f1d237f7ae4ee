"""Per-stream decoding of RECORD lines into rows for binary COPY: validation and parsing in one step.

A whole batch of RECORD lines is decoded by one msgspec call into typed structs (C code: no per-record
dicts, no jsonschema), then a generated comprehension turns them into the tuples asyncpg copies. A
validation error carries the batch index and the field, which map back to the input line number.
"""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from msgspec import Raw

from target_flx.convert import Converter, converter, raw_to_jsonb
from target_flx.errors import InputError, MissingKeyProperty
from target_flx.pgbinary import encode_timestamptz
from target_flx.types import (
    UUID_PATTERN,
    UUID_TEXT,
    ColumnType,
    allows_null,
    constrained,
    normalize,
    python_type,
)

# Columns singer-sdk targets add with `add_record_metadata` (same names, same meaning).
COMPUTED_METADATA = (
    ("_sdc_extracted_at", "timestamp with time zone"),
    ("_sdc_received_at", "timestamp with time zone"),
    ("_sdc_batched_at", "timestamp with time zone"),
    ("_sdc_sequence", "bigint"),
    ("_sdc_table_version", "bigint"),
    ("_sdc_sync_started_at", "bigint"),
)
DELETED_AT = "_sdc_deleted_at"
_ERROR_AT = re.compile(
    r"^(?P<msg>.*?)(?: - at `\$\[(?P<index>\d+)\](?:\.record)?(?:\.(?P<field>.*))?`)?$", re.S
)


@dataclass(frozen=True)
class Column:
    """One destination column: where its value comes from and how it is typed."""

    name: str
    pg_type: str
    prop: str | None  # the record property, or None for computed metadata
    json_kind: str
    nullable: bool = True


@dataclass(frozen=True)
class BatchMeta:
    """Per-batch metadata values (singer-sdk sets them per record; within a batch they are equal)."""

    received_at: datetime.datetime
    sequence: int
    sync_started_at: int


@dataclass
class DecodeFailure:
    index: int
    field: str | None
    message: str


class RecordCodec:
    """Decodes one stream's RECORD lines; rebuilt whenever the stream's schema or columns change."""

    def __init__(
        self,
        stream: str,
        columns: Sequence[Column],
        property_schemas: dict[str, dict[str, Any]],
        key_properties: Sequence[str],
        required: Sequence[str],
        *,
        validate: bool,
    ) -> None:
        self.stream = stream
        self.validate = validate
        self.columns = list(columns)
        record_columns = [c for c in self.columns if c.prop is not None]
        strict: list[tuple[Any, ...]] = []
        rename: dict[str, str] = {}
        converters: dict[int, Converter] = {}
        self._uuid_fields: list[tuple[str, str]] = []  # checked a batch at a time, see _check_uuids
        self._number_fields: list[tuple[str, str, bool]] = []  # (attr, property, null allowed)
        # Numeric columns travel as their exact JSON text and PostgreSQL parses them (see write.py): no
        # Decimal object and no per-value binary encoding in Python, the costliest value we load.
        # Not keys: upserts keep the last record per key by comparing values, and 1.0 is the same key as 1.
        self.text_columns = frozenset(
            c.name for c in self.columns if _as_text(c) and c.prop not in key_properties
        )
        text_fields: set[int] = set()
        for i, col in enumerate(record_columns):
            assert col.prop is not None
            schema = property_schemas.get(col.prop, {})
            decode_type = _decode_type(col, schema)
            if (conv := _converter(col)) is not None:
                converters[i] = conv
            is_key = col.prop in key_properties
            if (validate and not allows_null(schema)) or is_key or col.json_kind == "json":
                typ: Any = decode_type  # msgspec.Raw cannot be in a union: JSON null arrives as Raw b"null"
            else:
                typ = decode_type | None
            if is_key or (validate and col.prop in required):
                strict.append((f"f{i}", typ))
            else:
                strict.append((f"f{i}", typ, None))
            rename[f"f{i}"] = col.prop
            if decode_type is UUID_TEXT:
                self._uuid_fields.append((f"f{i}", col.prop))
            if col.name in self.text_columns:
                nullable = not (validate and not allows_null(schema)) and not is_key
                self._number_fields.append((f"f{i}", col.prop, nullable))
                text_fields.add(i)
        # The batch decoder checks only a UUID's length; its shape is checked for the whole batch at once,
        # several times faster than a regex per value inside msgspec. One-line decodes stay fully strict.
        batch = [(f[0], Raw if i in text_fields else _loosen(f[1]), *f[2:]) for i, f in enumerate(strict)]
        self.record_type = msgspec.defstruct(
            f"{_safe(stream)}Record", batch, rename=rename, kw_only=True, gc=False
        )
        strict_record = msgspec.defstruct(
            f"{_safe(stream)}Record", strict, rename=rename, kw_only=True, gc=False
        )
        message_type = _message_struct(stream, self.record_type)
        self.message_type = message_type
        self._decoder = msgspec.json.Decoder(list[message_type])  # type: ignore[valid-type]
        self._one = msgspec.json.Decoder(_message_struct(stream, strict_record))
        self._build = _row_builder(
            len(record_columns), [c.name for c in self.columns if c.prop is None], converters, text_fields
        )

    def decode(self, lines: Sequence[bytes]) -> tuple[list[Any], DecodeFailure | None]:
        """Decode as many leading lines as are valid; report the first invalid one."""
        failure = None
        try:
            messages = self._decoder.decode(b"[" + b",".join(lines) + b"]")
        except msgspec.ValidationError as exc:
            failure = parse_error(str(exc))
        except msgspec.DecodeError:
            failure = _first_malformed(lines)
        if failure is not None:
            good = lines[: failure.index]
            messages = self._decoder.decode(b"[" + b",".join(good) + b"]") if good else []
        if self._uuid_fields and (bad := self._check_uuids(messages)) is not None:
            messages, failure = messages[: bad.index], bad
        if self._number_fields and (bad := self._check_numbers(messages)) is not None:
            messages, failure = messages[: bad.index], bad
        return messages, failure

    def _check_numbers(self, messages: list[Any]) -> DecodeFailure | None:
        """The first record whose number property holds something else. msgspec has checked that each raw
        value is valid JSON, and a valid JSON value starting with a digit or '-' is a number: one search for
        a line starting otherwise checks the whole batch."""
        for attr, prop, nullable in self._number_fields:
            present = [v for m in messages if (v := getattr(m.record, attr)) is not None]
            if not present:
                continue
            starts = _NOT_NUMBER_OR_NULL if nullable else _NOT_NUMBER
            if starts.search(b"\n" + b"\n".join(present)) is None:
                continue
            for index, message in enumerate(messages):
                value = getattr(message.record, attr)
                if value is not None and starts.match(b"\n" + bytes(value)[:1]):
                    got = bytes(value)[:40].decode(errors="replace")
                    return DecodeFailure(index, prop, f"Expected a number, got {got}")
        return None

    def _check_uuids(self, messages: list[Any]) -> DecodeFailure | None:
        """The first record whose UUID property is not a UUID (one regex over the batch when all are)."""
        for attr, prop in self._uuid_fields:
            values = [getattr(m.record, attr) for m in messages]
            present = [v for v in values if v is not None]
            if not present or _canonical_uuids(present) or _UUIDS.fullmatch("\n".join(present) + "\n"):
                continue
            for index, value in enumerate(values):
                if value is not None and not _UUID.fullmatch(value):
                    return DecodeFailure(index, prop, f"Expected str matching regex {UUID_PATTERN!r}")
        return None

    def decode_lenient(self, line: bytes) -> Any:
        """The slow path for one line the strict decoder refused, accepting what JSON Schema accepts and
        msgspec does not: 1.0 for an integer, ISO 8601 date-times without the RFC 3339 'T' or colon.
        What the strict decoder accepts (a value only a batch check refused) is read as it reads it."""
        try:
            return self._as_batch_layout(self._one.decode(line))
        except msgspec.ValidationError:
            pass
        generic = _LENIENT.decode(line)
        record = generic.get("record") if isinstance(generic, dict) else None
        if isinstance(record, dict):
            for column in self.columns:
                if column.prop in record:
                    record[column.prop] = _relax(column.json_kind, record[column.prop], self.validate)
        message = self._one.decode(_EXACT.encode(generic))  # re-encoded: JSON columns stay raw JSON text
        return self._as_batch_layout(message)

    def _as_batch_layout(self, message: Any) -> Any:
        for attr, _, _ in self._number_fields:  # the batch layout carries numbers as their JSON text
            if (value := getattr(message.record, attr)) is not None:
                setattr(message.record, attr, Raw(str(value).encode()))
        return message

    def rows(self, messages: list[Any], meta: BatchMeta) -> list[tuple[Any, ...]]:
        received = encode_timestamptz(meta.received_at)  # one value for the whole batch: encode it once
        return self._build(messages, received, meta.sequence, meta.sync_started_at, _Extracted(self.stream))


class _Extracted(dict[str | None, bytes | None]):
    """time_extracted is usually one value for many records: parse and encode each distinct one once."""

    def __init__(self, stream: str) -> None:
        super().__init__()
        self.stream = stream
        self[None] = None  # the usual case (no time_extracted): a dict hit, not a __missing__ call

    def __missing__(self, key: str | None) -> bytes | None:
        try:
            value = msgspec.convert(key, datetime.datetime)
        except msgspec.ValidationError:
            raise InputError(f"time_extracted {key!r} is not a date-time", stream=self.stream) from None
        self[key] = encoded = encode_timestamptz(value)
        return encoded


_LENIENT = msgspec.json.Decoder(float_hook=decimal.Decimal)
_UUID_BODY = UUID_PATTERN.removeprefix("^").removesuffix("$")
_UUID = re.compile(_UUID_BODY)
_UUIDS = re.compile(f"(?:{_UUID_BODY}\n)*")
_HEX_TO_ZERO = bytes.maketrans(b"0123456789abcdefABCDEF", b"0" * 22)
_CANONICAL_UUID = b"00000000-0000-0000-0000-000000000000\n"


def _canonical_uuids(values: list[str]) -> bool:
    """All in the 8-4-4-4-12 hex form: one byte translation and one comparison, 5x faster than the regex
    (which still decides the other forms the schema's pattern allows)."""
    return ("\n".join(values) + "\n").encode().translate(_HEX_TO_ZERO) == _CANONICAL_UUID * len(values)


# A value holding a newline cannot pass as two: each piece would be shorter than a UUID.
_UUID_SHAPE = Annotated[str, msgspec.Meta(max_length=36)]
_NOT_NUMBER = re.compile(rb"\n[^-0-9]")
_NOT_NUMBER_OR_NULL = re.compile(rb"\n[^-0-9n]")  # a valid JSON value starting with n is null


def _as_text(col: Column) -> bool:
    """Columns loaded from their JSON text: JSON numbers into numeric."""
    return col.prop is not None and col.json_kind == "number" and normalize(col.pg_type) == "numeric"


def _loosen(typ: Any) -> Any:
    if typ is UUID_TEXT:
        return _UUID_SHAPE
    if typ == UUID_TEXT | None:
        return _UUID_SHAPE | None
    return typ


def _message_struct(stream: str, record_type: Any) -> Any:
    return msgspec.defstruct(
        f"{_safe(stream)}Message",
        [
            ("record", record_type),
            ("time_extracted", str | None, None),
            ("version", int | None, None),
        ],
        kw_only=True,
        gc=False,
    )


_EXACT = msgspec.json.Encoder(decimal_format="number")


def _relax(kind: str, value: Any, validate: bool) -> Any:
    if kind == "integer" and isinstance(value, decimal.Decimal) and value == value.to_integral_value():
        return int(value)
    if kind == "date-time" and isinstance(value, str):
        try:
            return datetime.datetime.fromisoformat(value)
        except ValueError:
            return value
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return decimal.Decimal(value)
    if kind == "string" and not validate and isinstance(value, int | decimal.Decimal | bool):
        return msgspec.json.encode(value).decode()  # what a text column holds for it, as SDK targets do
    return value


def parse_error(text: str) -> DecodeFailure:
    match = _ERROR_AT.match(text)
    assert match is not None
    index = int(match.group("index") or 0)
    message, field = match.group("msg"), match.group("field")
    if field is None and (missing := re.search(r"missing required field `([^`]*)`", message)):
        field = missing.group(1)
    return DecodeFailure(index=index, field=field, message=_humane(message))


def _first_malformed(lines: Sequence[bytes]) -> DecodeFailure:
    """The batch is not valid JSON: find which line (rare, so one at a time is fine)."""
    for index, line in enumerate(lines):
        try:
            msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            return DecodeFailure(index=index, field=None, message=f"malformed JSON ({exc})")
    raise AssertionError("a batch failed to decode but every line is valid JSON")


def input_error(stream: str, line: int, failure: DecodeFailure, keys: Sequence[str] = ()) -> InputError:
    if failure.field in keys and (
        "missing required field" in failure.message or "got null" in failure.message
    ):
        return MissingKeyProperty(
            f"key property missing or null ({failure.message})", stream=stream, line=line, field=failure.field
        )
    return InputError(failure.message, stream=stream, line=line, field=failure.field)


def _humane(message: str) -> str:
    return message.replace("`", "")


def _safe(name: str) -> str:
    cleaned = re.sub(r"\W", "_", name)
    return cleaned if cleaned.isidentifier() else f"S_{cleaned}"


def _decode_type(col: Column, schema: dict[str, Any]) -> Any:
    """The column's own Python type when the JSON kind maps to it directly, else the JSON kind's type."""
    natural = ColumnType(col.pg_type, col.json_kind)
    column_python = python_type(col.pg_type)
    kind_python = natural.decode_type
    if col.json_kind == "integer" and normalize(col.pg_type) in ("smallint", "integer", "bigint"):
        return column_python  # bounded int: an out-of-range value is reported, and the column widened
    return constrained(kind_python, schema)


def _converter(col: Column) -> Converter | None:
    return converter(col.json_kind, col.pg_type)


def _row_builder(
    n_record: int, computed: list[str], converters: dict[int, Converter], text_fields: set[int]
) -> Any:
    """Generate `[(r.f0, c3(r.f3), …, m.time_extracted, received, …) for m in messages]` for one layout."""
    parts = []
    for i in range(n_record):
        if i in text_fields:  # raw JSON number text (JSON null included), sent as it is: see write.py
            parts.append(f"r.f{i}")
        elif converters.get(i) is raw_to_jsonb:  # the commonest converter, inlined: no call per value
            parts.append(
                f"(None if (x{i} := r.f{i}) is None or (len(x{i}) == 4 and bytes(x{i}) == NULL) else x{i})"
            )
        else:
            parts.append(f"c{i}(r.f{i})" if i in converters else f"r.f{i}")
    sources = {
        "_sdc_extracted_at": "extracted[m.time_extracted]",
        "_sdc_received_at": "received",
        "_sdc_batched_at": "received",
        "_sdc_sequence": "sequence",
        "_sdc_table_version": "m.version",
        "_sdc_sync_started_at": "sync",
    }
    parts.extend(sources[name] for name in computed)
    body = ", ".join(parts) + ("," if len(parts) == 1 else "")
    source = (
        "def build(messages, received, sequence, sync, extracted):\n"
        f"    return [({body}) for m in messages for r in (m.record,)]\n"
    )
    namespace: dict[str, Any] = {f"c{i}": conv for i, conv in converters.items()}
    namespace["NULL"] = b"null"
    exec(compile(source, "<target_flx.codec>", "exec"), namespace)
    return namespace["build"]
