"""Prompts sent by "Ask about this article": which article a reply to one is about."""

from __future__ import annotations

from sqlalchemy import select

from bot.storage.base import Repository, insert
from bot.storage.schema import ask_prompts

__all__ = ["PromptRepository"]


class PromptRepository(Repository):
    async def add(self, chat_id: int, message_id: int, article_id: str) -> None:
        statement = insert(self.db, ask_prompts).values(
            chat_id=chat_id, message_id=message_id, article_id=article_id, created_at=self.now()
        )
        statement = statement.on_conflict_do_update(
            index_elements=[ask_prompts.c.chat_id, ask_prompts.c.message_id],
            set_={
                "article_id": statement.excluded.article_id,
                "created_at": statement.excluded.created_at,
            },
        )
        await self.db.write_one(statement)

    async def article(self, chat_id: int, message_id: int) -> str | None:
        """The article the prompt ``message_id`` asked about, if it was one."""
        result: str | None = await self.db.scalar(
            select(ask_prompts.c.article_id).where(
                ask_prompts.c.chat_id == chat_id, ask_prompts.c.message_id == message_id
            )
        )
        return result
