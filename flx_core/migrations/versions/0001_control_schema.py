"""control schema: pipelines, executions and their events, stream loads, validations, alerts, quarantine

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Written with schema "flx"; `flx_core.migrate` maps that name to the configured control schema.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from flx_core.migrations.schema import control_schema

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TABLES = [
    "pipelines",
    "plugins",
    "alerts",
    "executions",
    "pipeline_steps",
    "execution_events",
    "quarantine",
    "stream_loads",
    "validation_results",
]


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "pipelines",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("schedule", sa.Text(), nullable=True),
        sa.Column("timezone", sa.Text(), server_default="UTC", nullable=False),
        sa.Column("max_concurrent_executions", sa.Integer(), server_default="1", nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=True),
        sa.Column("retry_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("retry_delay_seconds", sa.Integer(), server_default="30", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("config", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipelines")),
        sa.UniqueConstraint("name", name=op.f("uq_pipelines_name")),
        schema="flx",
    )
    op.create_index(op.f("ix_pipelines_updated_at"), "pipelines", ["updated_at"], unique=False, schema="flx")
    op.create_table(
        "plugins",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("namespace", sa.Text(), nullable=True),
        sa.Column("variant", sa.Text(), nullable=True),
        sa.Column("pip_url", sa.Text(), nullable=True),
        sa.Column("config", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plugins")),
        sa.UniqueConstraint("type", "name", name=op.f("uq_plugins_type_name")),
        schema="flx",
    )
    op.create_index(op.f("ix_plugins_updated_at"), "plugins", ["updated_at"], unique=False, schema="flx")
    op.create_table(
        "alerts",
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("pipeline_id", sa.UUID(), nullable=True),
        sa.Column("check_name", sa.Text(), nullable=True),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column(
            "first_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("send_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_message", sa.Text(), nullable=True),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["flx.pipelines.id"],
            name=op.f("fk_alerts_pipeline_id_pipelines"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_alerts_fingerprint")),
        schema="flx",
    )
    op.create_index(op.f("ix_alerts_updated_at"), "alerts", ["updated_at"], unique=False, schema="flx")
    op.create_table(
        "executions",
        sa.Column("pipeline_id", sa.UUID(), nullable=False),
        sa.Column("execution_number", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.Text(), server_default="manual", nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="1", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Numeric(precision=14, scale=3), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("log_tail", sa.Text(), nullable=True),
        sa.Column("run_id", sa.UUID(), nullable=True),
        sa.Column("hostname", sa.Text(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["flx.pipelines.id"],
            name=op.f("fk_executions_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_executions")),
        sa.UniqueConstraint(
            "pipeline_id", "execution_number", name=op.f("uq_executions_pipeline_id_execution_number")
        ),
        schema="flx",
    )
    op.create_index(op.f("ix_executions_run_id"), "executions", ["run_id"], unique=False, schema="flx")
    op.create_index(
        "ix_executions_status_heartbeat", "executions", ["status", "heartbeat_at"], unique=False, schema="flx"
    )
    op.create_index(
        op.f("ix_executions_updated_at"), "executions", ["updated_at"], unique=False, schema="flx"
    )
    op.create_table(
        "pipeline_steps",
        sa.Column("pipeline_id", sa.UUID(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("block", sa.Text(), nullable=False),
        sa.Column("plugin_id", sa.UUID(), nullable=True),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["flx.pipelines.id"],
            name=op.f("fk_pipeline_steps_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["plugin_id"],
            ["flx.plugins.id"],
            name=op.f("fk_pipeline_steps_plugin_id_plugins"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_steps")),
        sa.UniqueConstraint("pipeline_id", "position", name=op.f("uq_pipeline_steps_pipeline_id_position")),
        schema="flx",
    )
    op.create_index(
        op.f("ix_pipeline_steps_updated_at"), "pipeline_steps", ["updated_at"], unique=False, schema="flx"
    )
    op.create_table(
        "execution_events",
        sa.Column("execution_id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["flx.executions.id"],
            name=op.f("fk_execution_events_execution_id_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_events")),
        sa.UniqueConstraint("execution_id", "seq", name=op.f("uq_execution_events_execution_id_seq")),
        schema="flx",
    )
    op.create_index(op.f("ix_execution_events_at"), "execution_events", ["at"], unique=False, schema="flx")
    op.create_index(
        op.f("ix_execution_events_updated_at"), "execution_events", ["updated_at"], unique=False, schema="flx"
    )
    op.create_table(
        "quarantine",
        sa.Column("execution_id", sa.UUID(), nullable=True),
        sa.Column("run_id", sa.UUID(), nullable=True),
        sa.Column("stream", sa.Text(), nullable=True),
        sa.Column("line_number", sa.BigInteger(), nullable=False),
        sa.Column("field", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("raw_line", sa.Text(), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["flx.executions.id"],
            name=op.f("fk_quarantine_execution_id_executions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
        schema="flx",
    )
    op.create_index(
        op.f("ix_quarantine_execution_id"), "quarantine", ["execution_id"], unique=False, schema="flx"
    )
    op.create_index(op.f("ix_quarantine_run_id"), "quarantine", ["run_id"], unique=False, schema="flx")
    op.create_index(
        op.f("ix_quarantine_updated_at"), "quarantine", ["updated_at"], unique=False, schema="flx"
    )
    op.create_table(
        "stream_loads",
        sa.Column("execution_id", sa.UUID(), nullable=True),
        sa.Column("run_id", sa.UUID(), nullable=True),
        sa.Column("stream", sa.Text(), nullable=False),
        sa.Column("schema_name", sa.Text(), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("load_method", sa.Text(), nullable=True),
        sa.Column("rows_inserted", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rows_updated", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rows_deleted", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rows_quarantined", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("batches", sa.Integer(), server_default="0", nullable=False),
        sa.Column("bytes", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text(), server_default="running", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["flx.executions.id"],
            name=op.f("fk_stream_loads_execution_id_executions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_loads")),
        schema="flx",
    )
    op.create_index(
        op.f("ix_stream_loads_execution_id"), "stream_loads", ["execution_id"], unique=False, schema="flx"
    )
    op.create_index(op.f("ix_stream_loads_run_id"), "stream_loads", ["run_id"], unique=False, schema="flx")
    op.create_index(
        op.f("ix_stream_loads_updated_at"), "stream_loads", ["updated_at"], unique=False, schema="flx"
    )
    op.create_table(
        "validation_results",
        sa.Column("execution_id", sa.UUID(), nullable=True),
        sa.Column("check_name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("observed", sa.Text(), nullable=True),
        sa.Column("expected", sa.Text(), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["flx.executions.id"],
            name=op.f("fk_validation_results_execution_id_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_validation_results")),
        schema="flx",
    )
    op.create_index(
        op.f("ix_validation_results_execution_id"),
        "validation_results",
        ["execution_id"],
        unique=False,
        schema="flx",
    )
    op.create_index(
        op.f("ix_validation_results_updated_at"),
        "validation_results",
        ["updated_at"],
        unique=False,
        schema="flx",
    )

    # updated_at moves on every UPDATE, whoever writes (tap-flx replicates on it)
    schema = control_schema()
    op.execute(
        f'CREATE OR REPLACE FUNCTION "{schema}".touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS '
        "$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$"
    )
    for table in TABLES:
        op.execute(
            f'CREATE TRIGGER touch_updated_at BEFORE UPDATE ON "{schema}"."{table}" '
            f'FOR EACH ROW EXECUTE FUNCTION "{schema}".touch_updated_at()'
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_validation_results_updated_at"), table_name="validation_results", schema="flx")
    op.drop_index(op.f("ix_validation_results_execution_id"), table_name="validation_results", schema="flx")
    op.drop_table("validation_results", schema="flx")
    op.drop_index(op.f("ix_stream_loads_updated_at"), table_name="stream_loads", schema="flx")
    op.drop_index(op.f("ix_stream_loads_run_id"), table_name="stream_loads", schema="flx")
    op.drop_index(op.f("ix_stream_loads_execution_id"), table_name="stream_loads", schema="flx")
    op.drop_table("stream_loads", schema="flx")
    op.drop_index(op.f("ix_quarantine_updated_at"), table_name="quarantine", schema="flx")
    op.drop_index(op.f("ix_quarantine_run_id"), table_name="quarantine", schema="flx")
    op.drop_index(op.f("ix_quarantine_execution_id"), table_name="quarantine", schema="flx")
    op.drop_table("quarantine", schema="flx")
    op.drop_index(op.f("ix_execution_events_updated_at"), table_name="execution_events", schema="flx")
    op.drop_index(op.f("ix_execution_events_at"), table_name="execution_events", schema="flx")
    op.drop_table("execution_events", schema="flx")
    op.drop_index(op.f("ix_pipeline_steps_updated_at"), table_name="pipeline_steps", schema="flx")
    op.drop_table("pipeline_steps", schema="flx")
    op.drop_index(op.f("ix_executions_updated_at"), table_name="executions", schema="flx")
    op.drop_index("ix_executions_status_heartbeat", table_name="executions", schema="flx")
    op.drop_index(op.f("ix_executions_run_id"), table_name="executions", schema="flx")
    op.drop_table("executions", schema="flx")
    op.drop_index(op.f("ix_alerts_updated_at"), table_name="alerts", schema="flx")
    op.drop_table("alerts", schema="flx")
    op.drop_index(op.f("ix_plugins_updated_at"), table_name="plugins", schema="flx")
    op.drop_table("plugins", schema="flx")
    op.drop_index(op.f("ix_pipelines_updated_at"), table_name="pipelines", schema="flx")
    op.drop_table("pipelines", schema="flx")
    op.execute(f'DROP FUNCTION IF EXISTS "{control_schema()}".touch_updated_at()')
