"""Each chat's language, chosen with /language (NULL: the user's Telegram language).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _schema() -> str | None:
    """PostgreSQL's ``newsbot_bot`` (ALTER TABLE is not schema-translated), None on SQLite."""
    schema: str | None = context.config.attributes.get("version_table_schema")
    return schema


def upgrade() -> None:
    op.add_column("chats", sa.Column("language", sa.Text), schema=_schema())


def downgrade() -> None:
    with op.batch_alter_table("chats", schema=_schema()) as batch:  # SQLite rebuilds the table
        batch.drop_column("language")
