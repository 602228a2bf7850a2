"""The bot's own data: chats, feeds, seen entries, stories, subscriptions, the outbox, ask
prompts and jobs, on SQLite (``DATA_DIR/bot.sqlite3``) or PostgreSQL (``DATABASE_URL``, schema
``newsbot_bot``).

One small repository per concern, gathered in `BotStore`; every method is async. The
tables are declared once (``schema.py``), migrated by Alembic (``bot/migrations``).
"""

from bot.storage.copy import copy_bot_data
from bot.storage.database import (
    Database,
    DatabaseUnavailableError,
    SchemaTooNewError,
    StorageError,
)
from bot.storage.rows import (
    ChatPrefs,
    Delivery,
    FeedRow,
    JobRow,
    OutboxRow,
    Story,
    Subscription,
)
from bot.storage.store import BotStore
from bot.storage.subscriptions import SubscriptionLimitError

__all__ = [
    "BotStore",
    "ChatPrefs",
    "Database",
    "DatabaseUnavailableError",
    "Delivery",
    "FeedRow",
    "JobRow",
    "OutboxRow",
    "SchemaTooNewError",
    "StorageError",
    "Story",
    "Subscription",
    "SubscriptionLimitError",
    "copy_bot_data",
]
