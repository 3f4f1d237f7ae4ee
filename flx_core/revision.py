"""The control schema's newest migration, known without importing Alembic.

Plugins start often (every `meltano run`), and a current schema is the usual case: comparing this constant
with `alembic_version` costs one query, where loading Alembic and a second driver costs a third of a
second. A test keeps it equal to Alembic's own head.
"""

HEAD = "0005"
