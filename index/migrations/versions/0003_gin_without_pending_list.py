"""PostgreSQL: the keyword index's GIN index without a pending list (``fastupdate = off``).

With the default, new passages' words wait in a pending list that every keyword query
scans from start to end until VACUUM merges it: at 100k passages a list of 1,912 entries
(271 pages, left by one ingest) took a median two-word query from 5.4 to 16.2 ms. Without
it each insert updates the index at once (README, "PostgreSQL"). SQLite: nothing to do.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER INDEX passage_words_document SET (fastupdate = off)")
    op.execute("SELECT gin_clean_pending_list('passage_words_document'::regclass)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER INDEX passage_words_document RESET (fastupdate)")
