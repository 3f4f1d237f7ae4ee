"""`schema.table` and column names from the config as quoted SQL for a SQLAlchemy dialect.

An unquoted part is lowercased (SQLAlchemy's convention, so PostgreSQL and Oracle both fold it their way);
a quoted part is kept as it is (see `flx.sql_names`, which splits and refuses).
"""

from __future__ import annotations

from sqlalchemy.engine import Dialect

from flx.sql_names import split_qualified


def quote_qualified(name: str, dialect: Dialect) -> str:
    preparer = dialect.identifier_preparer
    return ".".join(
        preparer.quote_identifier(part) if quoted else preparer.quote(part.lower())
        for part, quoted in split_qualified(name)
    )


def quote_column(name: str, dialect: Dialect) -> str:
    parts = split_qualified(name, max_parts=1)
    (part, quoted) = parts[0]
    preparer = dialect.identifier_preparer
    return preparer.quote_identifier(part) if quoted else preparer.quote(part.lower())
