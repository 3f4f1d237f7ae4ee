"""What a SCHEMA message asks of its stream's table: columns and their types, keys, the load method.

`StreamShape.of` reads the message once, refusing what cannot be loaded with one line naming the stream,
the line and the property; the loader keeps the shape until the stream's next different SCHEMA. Nothing
here touches the database: `StreamTable` makes the table the shape asks for, and the shape builds the
record codec for the columns the table turns out to have.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from target_flx.codec import COMPUTED_METADATA, DELETED_AT, Column, RecordCodec
from target_flx.connection import first_line
from target_flx.errors import InputError
from target_flx.naming import column_names
from target_flx.settings import LoadMethod, LoadSettings
from target_flx.types import UnsupportedSchema, column_type

log = logging.getLogger(__name__)

# msgspec, which decodes records by property name, cannot name a field with these characters.
_UNREADABLE_NAME = re.compile(r'["\\\x00-\x1f]')


@dataclass(frozen=True)
class StreamShape:
    """One SCHEMA message, read: the column each property becomes and how the stream loads."""

    stream: str
    schema: dict[str, Any]  # the message's schema, as sent
    keys: list[str]  # key properties
    key_columns: list[str]  # their column names
    method: LoadMethod
    wanted: dict[str, str]  # column → the PostgreSQL type the schema asks for
    layout: list[tuple[str, str | None, str]]  # (column, property or None for metadata, JSON kind)
    property_schemas: dict[str, dict[str, Any]]
    line: int  # the SCHEMA message's input line

    @classmethod
    def of(
        cls, stream: str, schema: dict[str, Any], key_properties: list[str], settings: LoadSettings, line: int
    ) -> StreamShape:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            raise InputError("SCHEMA message has no 'properties' object", stream=stream, line=line)
        missing = [k for k in key_properties if k not in properties]
        if missing:
            raise InputError(f"key properties {missing} are not in the schema", stream=stream, line=line)
        computed = [(n, t) for n, t in COMPUTED_METADATA if _metadata_column(settings, n)]
        props = _record_properties(stream, properties, {n for n, _ in computed}, settings, line)
        names = column_names(list(props))
        wanted: dict[str, str] = {}
        kinds: dict[str, str] = {}
        for prop, prop_schema in props.items():
            try:
                ctype = column_type(
                    prop_schema if isinstance(prop_schema, dict) else {},
                    interpret_content_encoding=settings.interpret_content_encoding,
                )
            except UnsupportedSchema as exc:
                raise InputError(str(exc), stream=stream, line=line, field=prop) from None
            except RecursionError:
                raise InputError("schema nested too deeply", stream=stream, line=line, field=prop) from None
            wanted[names[prop]] = ctype.pg_type
            kinds[names[prop]] = ctype.json_kind
        for name, pg_type in computed:
            wanted.setdefault(name, pg_type)
        layout: list[tuple[str, str | None, str]] = [(names[p], p, kinds[names[p]]) for p in props]
        layout += [(n, None, "metadata") for n, _ in computed]
        return cls(
            stream,
            schema,
            list(key_properties),
            [names[k] for k in key_properties],
            settings.method_for(bool(key_properties)),
            wanted,
            layout,
            {p: s for p, s in props.items() if isinstance(s, dict)},
            line,
        )

    def same(self, schema: dict[str, Any], key_properties: list[str]) -> bool:
        """Whether a later SCHEMA message says nothing new (taps repeat theirs)."""
        return schema == self.schema and key_properties == self.keys

    @property
    def upsert(self) -> bool:
        """Records of one key replace each other (overwrite loads its new table the same way)."""
        return self.method in ("upsert", "overwrite")

    @property
    def append(self) -> bool:
        """Batches go straight into the table, without the stage and `ON CONFLICT`."""
        return self.method == "append-only" or not self.key_columns

    @property
    def single_key(self) -> tuple[str, str] | None:
        """(column, JSON kind) of an upsert's only key: its range may let batches skip the stage."""
        if not self.upsert or len(self.key_columns) != 1:
            return None
        column = self.key_columns[0]
        return column, next(kind for name, _, kind in self.layout if name == column)

    def key_column(self, columns: Sequence[Column]) -> Column | None:
        """The `single_key` among the stream's columns (None: the stream has no single upsert key)."""
        key = self.single_key
        return next(c for c in columns if c.name == key[0]) if key is not None else None

    def columns(self, actual: Mapping[str, str]) -> list[Column]:
        """The stream's columns with the types the table has (`actual`: column → type)."""
        return [Column(name, actual[name], prop, kind) for name, prop, kind in self.layout]

    def codec(self, columns: Sequence[Column], *, validate: bool) -> RecordCodec:
        """The record decoder for these columns; a schema msgspec cannot express is the SCHEMA's error."""
        try:
            return RecordCodec(
                self.stream,
                columns,
                self.property_schemas,
                self.keys,
                list(self.schema.get("required") or []),
                validate=validate,
            )
        except (TypeError, ValueError) as exc:
            reason = f"unsupported schema: {first_line(exc)}"
            raise InputError(reason, stream=self.stream, line=self.line) from None


def _metadata_column(settings: LoadSettings, name: str) -> bool:
    if settings.add_record_metadata:
        return True
    return settings.process_activate_version_messages and name == "_sdc_table_version"


def _record_properties(
    stream: str, properties: dict[str, Any], metadata: set[str], settings: LoadSettings, line: int
) -> dict[str, Any]:
    """The properties that become columns. A property named like a metadata column target-flx fills
    itself is left out, as singer-sdk targets do (their metadata overwrites it), with a warning."""
    for prop in properties:
        if _UNREADABLE_NAME.search(prop):
            raise InputError(
                "property names holding a double quote, a backslash or a control character cannot be"
                " loaded; rename the property with a stream map",
                stream=stream,
                line=line,
                field=prop,
            )
    props = {p: s for p, s in properties.items() if p not in metadata}
    for dropped in sorted(set(properties) - set(props)):
        log.warning(
            "stream %r, line %d: property %r has the name of a metadata column target-flx fills;"
            " its values are not loaded (set add_record_metadata: false to load them)",
            stream,
            line,
            dropped,
        )
    if settings.add_record_metadata or settings.process_activate_version_messages:
        props.setdefault(DELETED_AT, {"type": ["null", "string"], "format": "date-time"})
    return props
