"""Work shared by several workers: leases on outbox rows and feeds, and a jobs table.

Outbox rows and feeds get ``claimed_by`` and ``claimed_until`` (a claim's lease: a worker
that dies lets its rows and feeds go when it passes); ``outbox_chat_busy`` finds whether a
chat is being sent to or is within its gap; ``jobs`` holds /reindex requests (at most one
queued or running per kind) with their progress.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = sa.text("state IN ('queued', 'running')")


def _schema() -> str | None:
    """PostgreSQL's ``newsbot_bot`` (ALTER TABLE is not schema-translated), None on SQLite."""
    schema: str | None = context.config.attributes.get("version_table_schema")
    return schema


def upgrade() -> None:
    schema = _schema()
    for table in ("outbox", "feeds"):
        op.add_column(table, sa.Column("claimed_by", sa.Text), schema=schema)
        op.add_column(table, sa.Column("claimed_until", sa.Float), schema=schema)
    op.create_index("outbox_chat_busy", "outbox", ["chat_id", "claimed_until"], schema=schema)
    op.create_table(
        "jobs",
        sa.Column("id", RowId, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("chat_id", sa.BigInteger),
        sa.Column("message_id", sa.BigInteger),
        sa.Column("language", sa.Text),
        sa.Column("done", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("total", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("result", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("claimed_by", sa.Text),
        sa.Column("claimed_until", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        schema=schema,
    )
    op.create_index(
        "jobs_once",
        "jobs",
        ["kind"],
        unique=True,
        schema=schema,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )


def downgrade() -> None:
    schema = _schema()
    op.drop_table("jobs", schema=schema)
    op.drop_index("outbox_chat_busy", "outbox", schema=schema)
    for table in ("outbox", "feeds"):
        with op.batch_alter_table(table, schema=schema) as batch:  # SQLite rebuilds the table
            batch.drop_column("claimed_until")
            batch.drop_column("claimed_by")
