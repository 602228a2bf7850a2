"""Articles, passages with their vectors, keyword index, meta: the schema of the
hand-written scheme's version 1 (existing files at that version are stamped here).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PassageId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text),
    )
    op.create_table(
        "articles",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("outlet", sa.Text),
        sa.Column("author", sa.Text),
        sa.Column("published", sa.Text),
        sa.Column("source", sa.Text),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("ingested_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    )
    op.create_index("articles_url", "articles", ["url"])
    op.create_index("articles_published", "articles", ["published"])
    outlet = "outlet COLLATE NOCASE" if sqlite else "lower(outlet)"
    op.create_index("articles_outlet", "articles", [sa.text(outlet)])
    op.create_table(
        "passages",
        sa.Column("id", PassageId, primary_key=True, autoincrement=True),
        sa.Column(
            "article_id",
            sa.Text,
            sa.ForeignKey("articles.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("start", sa.Integer, nullable=False),
        sa.Column("end", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("sentences", sa.Text, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("sentence_vectors", sa.LargeBinary, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("passages_article", "passages", ["article_id"])
    if sqlite:
        op.execute(
            "CREATE VIRTUAL TABLE passages_fts USING fts5("
            "title, body, tokenize = 'porter unicode61 remove_diacritics 2')"
        )
    else:
        op.create_table(
            "passage_words",
            sa.Column(
                "passage_id",
                PassageId,
                sa.ForeignKey("passages.id", ondelete="CASCADE"),
                primary_key=True,
            ),
            sa.Column("document", TSVECTOR, nullable=False),
        )
        op.create_index(
            "passage_words_document", "passage_words", ["document"], postgresql_using="gin"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE passages_fts")
    else:
        op.drop_table("passage_words")
    op.drop_table("passages")
    op.drop_table("articles")
    op.drop_table("meta")
