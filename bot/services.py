"""What the handlers share: settings, the served index, the database, the per-user limit."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from telegram.ext import ContextTypes

from bot.database import Database
from bot.reloading import KnowledgeReloader
from bot.settings import Settings
from index import KnowledgeIndex


@dataclass
class Services:
    """What the handlers share: settings, the served index, the database."""

    settings: Settings
    index: KnowledgeIndex
    database: Database
    limiter: QuestionLimiter = field(init=False)
    # Kiwi and numpy release the GIL for part of their work; two threads match two cores.
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="answer")
    )

    reloader: KnowledgeReloader = field(init=False)
    # Long-running tasks of this process (the knowledge watcher), cancelled at shutdown.
    background: list[asyncio.Task] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.limiter = QuestionLimiter(self.settings.user_questions_per_minute)
        self.reloader = KnowledgeReloader(self)


class QuestionLimiter:
    """At most `per_minute` questions per user in any sliding minute."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._times: dict[int, deque[float]] = defaultdict(deque)

    def wait_seconds(self, user_id: int, now: float | None = None) -> int:
        """0 when the user may ask now, else roughly how long until they may."""
        now = time.monotonic() if now is None else now
        times = self._times[user_id]
        while times and now - times[0] >= 60:
            times.popleft()
        if len(times) >= self.per_minute:
            return max(1, int(60 - (now - times[0])) + 1)
        times.append(now)
        return 0


def services_of(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.bot_data["services"]


