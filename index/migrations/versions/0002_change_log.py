"""The change log every process follows to keep its vector index equal to the database
(``index/changes.py``), and the log's identity in ``meta``.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("added", sa.Text, nullable=False),
        sa.Column("removed", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sqlite_autoincrement=True,  # numbers never reused, even after pruning
    )
    # A saved vector index names the log it followed: one from another database is not
    # caught up from this one's log.
    op.execute(
        sa.text("INSERT INTO meta (key, value) VALUES ('change_log', :id)").bindparams(
            id=uuid.uuid4().hex
        )
    )


def downgrade() -> None:
    op.execute("DELETE FROM meta WHERE key IN ('change_log', 'changes_pruned_to')")
    op.drop_table("changes")
