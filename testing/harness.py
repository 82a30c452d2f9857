"""Run the real bot (its own Application, handlers, database) against the Bot API stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import select
from telegram.ext import Application

from bot.app import build_application
from bot.services import Services
from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.models import FollowUp, Question
from index import KnowledgeIndex
from testing.standin import BotApiStandIn


@dataclass
class RunningBot:
    tg: BotApiStandIn
    app: Application
    services: Services
    settings: Settings

    @property
    def database(self) -> Database:
        return self.services.database

    async def questions(self) -> list[Question]:
        async with self.database.session() as session:
            return list((await session.exec(select(Question).order_by(Question.id))).all())

    async def followups(self) -> list[FollowUp]:
        async with self.database.session() as session:
            return list((await session.exec(select(FollowUp).order_by(FollowUp.id))).all())


def bot_settings(tg: BotApiStandIn, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "telegram_bot_token": tg.token,
        "telegram_base_url": tg.base_url,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'db' / 'maxbot.db'}",
        "knowledge_dir": Path(__file__).resolve().parent.parent / "knowledge",
        "spool_path": tmp_path / "spool" / "spool.jsonl",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def running_bot(tg: BotApiStandIn, settings: Settings, index: KnowledgeIndex,
                      write_timeout: float = 2.0) -> AsyncIterator[RunningBot]:
    """Start the bot as `maxbot run` does (initialize, post_init, poll, start) and stop it."""
    database = Database(settings.database_url, settings.spool_path, write_timeout=write_timeout)
    services = Services(settings, index, database)
    app = build_application(settings, services)
    await app.initialize()
    await app.post_init(app)
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    await app.start()
    try:
        yield RunningBot(tg, app, services, settings)
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
        await app.post_shutdown(app)
