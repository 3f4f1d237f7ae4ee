"""The control schema: Alembic migrations from empty, down to base and up again; models match the DB."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from flx_core import migrate
from flx_core.database import make_engine
from flx_core.models import Base
from flx_core.settings import DatabaseSettings

EXPECTED_TABLES = {
    "pipelines",
    "pipeline_steps",
    "plugins",
    "executions",
    "execution_events",
    "stream_loads",
    "validation_results",
    "alerts",
    "quarantine",
    "schedule_ticks",
    "execution_logs",
    "alembic_version",
}


def _tables(engine: Engine, schema: str) -> set[str]:
    return set(inspect(engine).get_table_names(schema=schema))


def test_upgrade_from_empty_downgrade_and_upgrade_again(
    db_settings: DatabaseSettings, fresh_schema_name: str
) -> None:
    settings = db_settings.model_copy(update={"control_schema": fresh_schema_name})
    engine = make_engine(settings)
    try:
        assert migrate.current_revision(engine, fresh_schema_name) is None
        migrate.upgrade(engine, fresh_schema_name)
        assert _tables(engine, fresh_schema_name) == EXPECTED_TABLES
        assert migrate.current_revision(engine, fresh_schema_name) == migrate.head_revision()

        migrate.upgrade(engine, fresh_schema_name)  # idempotent
        assert migrate.current_revision(engine, fresh_schema_name) == migrate.head_revision()

        migrate.downgrade(engine, fresh_schema_name)
        assert _tables(engine, fresh_schema_name) == {"alembic_version"}
        assert migrate.current_revision(engine, fresh_schema_name) is None

        migrate.upgrade(engine, fresh_schema_name)
        assert _tables(engine, fresh_schema_name) == EXPECTED_TABLES
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{fresh_schema_name}" CASCADE'))
        engine.dispose()


def test_models_match_migrated_schema(db_settings: DatabaseSettings) -> None:
    engine = make_engine(db_settings)
    try:
        migrate.ensure_schema(engine, "flx")
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "include_schemas": True,
                    "include_name": lambda name, type_, _p: type_ != "schema" or name == "flx",
                },
            )
            diff = [d for d in compare_metadata(context, Base.metadata) if "alembic_version" not in repr(d)]
        assert diff == []
    finally:
        engine.dispose()


def test_updated_at_moves_on_raw_sql_update(engine: Engine) -> None:
    migrate.ensure_schema(engine, "flx")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO flx.pipelines (name) VALUES ('touch-test')"))
        before = conn.execute(
            text("SELECT updated_at FROM flx.pipelines WHERE name = 'touch-test'")
        ).scalar_one()
    with engine.begin() as conn:
        conn.execute(text("UPDATE flx.pipelines SET description = 'x' WHERE name = 'touch-test'"))
        after = conn.execute(
            text("SELECT updated_at FROM flx.pipelines WHERE name = 'touch-test'")
        ).scalar_one()
    assert after > before


def test_the_plugins_fast_revision_check_knows_alembics_head() -> None:
    from flx_core.revision import HEAD

    assert migrate.head_revision() == HEAD
