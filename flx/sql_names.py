"""`schema.table` and column names from the config, split into their parts by SQL's own rules.

An unquoted part is a plain identifier, compared case-insensitively; a double-quoted part is taken
verbatim (`""` stands for a quote). Anything else is refused rather than escaped into something the owner
did not mean. Each dialect quotes the parts its own way (`flx.validation.identifiers`, `flx.oracle`).
"""

from __future__ import annotations

import re

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_$#]*$")


class IdentifierError(ValueError):
    """A table or column name that is not a valid identifier."""


def split_qualified(name: str, max_parts: int = 2) -> list[tuple[str, bool]]:
    """`schema.table` → [("schema", False), ("table", False)]; the flag says the part was quoted."""
    parts: list[tuple[str, bool]] = []
    i, text = 0, name.strip()
    while True:
        if i < len(text) and text[i] == '"':
            end, chars = i + 1, []
            while True:
                if end >= len(text):
                    raise IdentifierError(f"unterminated quoted identifier in {name!r}")
                if text[end] == '"':
                    if end + 1 < len(text) and text[end + 1] == '"':
                        chars.append('"')
                        end += 2
                        continue
                    break
                chars.append(text[end])
                end += 1
            if not chars:
                raise IdentifierError(f"empty quoted identifier in {name!r}")
            parts.append(("".join(chars), True))
            i = end + 1
        else:
            end = text.find(".", i)
            end = len(text) if end == -1 else end
            part = text[i:end]
            if not _PLAIN.match(part):
                raise IdentifierError(f"{part!r} in {name!r} is not a plain identifier (quote it)")
            parts.append((part, False))
            i = end
        if i == len(text):
            break
        if text[i] != ".":
            raise IdentifierError(f"unexpected {text[i]!r} in {name!r}")
        i += 1
    if len(parts) > max_parts:
        raise IdentifierError(f"{name!r} has more than {max_parts} dotted parts")
    return parts
