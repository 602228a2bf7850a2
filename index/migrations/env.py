"""Alembic environment of the article store, run programmatically by
``index.database.Database.open`` with an open connection (no alembic.ini)."""

from alembic import context

from index.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("The index's migrations run when it opens its database: run python -m index.")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table_schema=context.config.attributes.get("version_table_schema"),
)
with context.begin_transaction():
    context.run_migrations()
