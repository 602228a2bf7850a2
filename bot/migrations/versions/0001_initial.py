"""The bot's schema as the hand-written scheme left it (its version 2).

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Files from that scheme are stamped at this revision rather than running it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "chats",
        sa.Column("chat_id", RowId, primary_key=True, autoincrement=False),
        sa.Column("type", sa.Text, nullable=False, server_default="private"),
        sa.Column("title", sa.Text),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("migrated_to", sa.BigInteger),
        sa.Column("mode", sa.Text, nullable=False, server_default="instant"),
        sa.Column("digest_hour", sa.Integer, nullable=False, server_default=sa.text("8")),
        sa.Column("quiet_start", sa.Integer),
        sa.Column("quiet_end", sa.Integer),
        sa.Column("tz_minutes", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "feeds",
        sa.Column("id", RowId, primary_key=True),
        sa.Column("url", sa.Text, nullable=False, unique=True),
        sa.Column("title", sa.Text),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("min_interval", sa.Float, nullable=False, server_default=sa.text("0")),
        sa.Column("next_poll_at", sa.Float, nullable=False, server_default=sa.text("0")),
        sa.Column("polls", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_success_at", sa.Float),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_at", sa.Float),
        sa.Column("failures", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("articles", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("preset", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "feed_entries",
        sa.Column(
            "feed_id",
            sa.BigInteger,
            sa.ForeignKey("feeds.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("entry_key", sa.Text, primary_key=True),
        sa.Column("article_id", sa.Text),
        sa.Column("seen_at", sa.Float, nullable=False),
    )
    op.create_table(
        "stories",
        sa.Column("article_id", sa.Text, primary_key=True),
        sa.Column("url", sa.Text),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("outlet", sa.Text),
        sa.Column("feed_id", sa.BigInteger),
        sa.Column("duplicate_of", sa.Text),
        sa.Column("signature", sa.LargeBinary),
        sa.Column("seen_at", sa.Float, nullable=False),
    )
    op.create_index("stories_hash", "stories", ["content_hash"])
    op.create_index("stories_seen", "stories", ["seen_at"])
    op.create_table(
        "subscriptions",
        sa.Column("id", RowId, primary_key=True),
        sa.Column("chat_id", sa.BigInteger, nullable=False),
        sa.Column("thread_id", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("topic", sa.Text, nullable=False, server_default=""),
        sa.Column("outlet", sa.Text, nullable=False, server_default=""),
        sa.Column("vector", sa.LargeBinary),
        sa.Column("muted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_by", sa.BigInteger),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index(
        "subscriptions_once",
        "subscriptions",
        ["chat_id", "thread_id", sa.text("lower(topic)"), sa.text("lower(outlet)")],
        unique=True,
    )
    op.create_table(
        "outbox",
        sa.Column("id", RowId, primary_key=True),
        sa.Column("chat_id", sa.BigInteger, nullable=False),
        sa.Column("thread_id", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("article_id", sa.Text),
        sa.Column("subscription_id", sa.BigInteger),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("not_before", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text),
        sa.Column("message_id", sa.BigInteger),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("sent_at", sa.Float),
    )
    op.create_index(
        "outbox_once",
        "outbox",
        ["chat_id", "thread_id", "article_id"],
        unique=True,
        sqlite_where=sa.text("article_id IS NOT NULL"),
        postgresql_where=sa.text("article_id IS NOT NULL"),
    )
    op.create_index("outbox_due", "outbox", ["state", "not_before"])
    op.create_table(
        "ask_prompts",
        sa.Column("chat_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("message_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("article_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("ask_prompts", "outbox", "subscriptions", "stories", "feed_entries"):
        op.drop_table(table)
    op.drop_table("feeds")
    op.drop_table("chats")
