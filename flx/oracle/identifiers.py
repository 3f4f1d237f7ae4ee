"""`SCHEMA.TABLE` from the config, as SQL Oracle cannot misread and nobody can inject through."""

from __future__ import annotations

import re

from flx.sql_names import IdentifierError, split_qualified

_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9_$#]{0,127}$")


def oracle_table(name: str) -> str:
    """Unquoted parts fold to upper case, as Oracle itself would; quoted parts keep their case."""
    parts: list[str] = []
    for part, quoted in split_qualified(name, max_parts=2):
        if quoted:
            if '"' in part or len(part) > 128:
                raise IdentifierError(f"{part!r} in {name!r} is not a valid Oracle identifier")
            parts.append(part)
        else:
            if not _PLAIN.match(part):
                raise IdentifierError(f"{part!r} in {name!r} is not a valid Oracle identifier")
            parts.append(part.upper())
    return ".".join(f'"{part}"' for part in parts)
