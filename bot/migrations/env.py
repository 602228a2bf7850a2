"""Alembic environment of the bot's database, run programmatically by
``bot.storage.database.Database.open`` with an open connection (no alembic.ini)."""

from alembic import context

from bot.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("The bot's migrations run when the bot opens its database: start the bot.")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table_schema=context.config.attributes.get("version_table_schema"),
)
with context.begin_transaction():
    context.run_migrations()
