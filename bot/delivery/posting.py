"""Posting follow-ups to the secretariat group: a job that retries until the group has each.

The follow-up row is the promise made to the asker ("접수번호 N"). Whoever opens one (a
question, a 👎, a consultation, a spool replay) only wakes the poster; the poster finds every
follow-up without a group post, posts it and records the post. A failure is noted on the row
and tried again later with backoff, so a Telegram outage, a database outage or a restart
delays a post but never loses it. No database session is held across a Bot API call: a send
may wait a minute for the group's flood limit, and a held connection starved every other
handler (SQLite's pool has one).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError
from telegram import Bot
from telegram.error import TelegramError

from bot.followups import post_keyboard, post_text
from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.models import EventKind, utcnow
from bot.storage.records import (
    add_event,
    claim_followup_post,
    followup_case,
    followup_post_failed,
    unposted_followups,
)
from index import KnowledgeIndex

log = logging.getLogger(__name__)

# How often the poster looks for follow-ups nobody woke it for (opened by another process,
# written by a spool replay, or due for another try).
SCAN_SECONDS = 5.0
# The waits between tries of one follow-up: doubling from the first to the longest.
FIRST_RETRY = dt.timedelta(seconds=2)
LONGEST_RETRY = dt.timedelta(minutes=5)


class PosterServices(Protocol):
    """What the poster reads of the bot's services (bot/services.py, which holds the poster)."""

    settings: Settings
    database: Database
    index: KnowledgeIndex


class FollowUpPoster:
    """Posts every follow-up not yet in the secretariat group, one at a time."""

    def __init__(self, services: PosterServices) -> None:
        self.services = services
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self, bot: Bot) -> None:
        if self.services.settings.secretariat_chat_id is None or self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(self._run(bot),
                                                            name="followup-poster")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def poke(self) -> None:
        """A follow-up was opened: look now rather than at the next scan."""
        self._wake.set()

    async def _run(self, bot: Bot) -> None:
        while True:
            self._wake.clear()  # before looking: a poke while posting means look again
            try:
                while await self.post_due(bot):
                    pass
            except SQLAlchemyError as exc:  # the database is away: the next scan tries again
                log.warning("follow-ups not posted now (%s); trying again", type(exc).__name__)
            except Exception:  # a bug must not end posting for good
                log.exception("follow-up poster failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SCAN_SECONDS)

    async def post_due(self, bot: Bot) -> int:
        """Post the follow-ups that are due; how many were tried."""
        database = self.services.database
        async with database.session() as session:
            due = await unposted_followups(session, utcnow())
        for followup_id in due:
            await self._post(bot, followup_id)
        return len(due)

    async def _post(self, bot: Bot, followup_id: int) -> None:
        services = self.services
        group = services.settings.secretariat_chat_id
        now = utcnow()
        # Held for longer than a send may take with all its retries: meanwhile no other
        # process posts it; if this one dies, another takes it over afterwards.
        lease = dt.timedelta(seconds=services.settings.send_retry_seconds + 60)
        async with services.database.session() as session:
            if not await claim_followup_post(session, followup_id, now, now + lease):
                return
            case = await followup_case(session, followup_id)
        if case is None:
            return
        # The closest entries are a search over the index: CPU work, kept off the event loop.
        text = await asyncio.to_thread(post_text, case, services.index)
        try:
            message = await bot.send_message(group, text, parse_mode="HTML",
                                             reply_markup=post_keyboard(followup_id))
        except asyncio.CancelledError:
            # Stopping: hand the follow-up back at once rather than after the lease.
            async with services.database.session() as session:
                await followup_post_failed(session, followup_id, "interrupted", utcnow())
            raise
        except TelegramError as exc:
            # The exponent capped: an outage of hours must not overflow the wait.
            retry = min(FIRST_RETRY * 2 ** min(case.followup.post_attempts, 10), LONGEST_RETRY)
            async with services.database.session() as session:
                attempts = await followup_post_failed(session, followup_id, str(exc),
                                                      utcnow() + retry)
            log.warning("follow-up %s not posted to the secretariat group (attempt %d: %s); "
                        "trying again in %s", followup_id, attempts, exc, retry)
            return
        await self._record_post(followup_id, message.message_id)

    async def _record_post(self, followup_id: int, message_id: int) -> None:
        """Record a post that was made, waiting out a database outage: unrecorded, the
        follow-up would be posted a second time."""
        wait = FIRST_RETRY.total_seconds()
        while True:
            try:
                async with self.services.database.session() as session:
                    await add_event(session, followup_id, EventKind.POSTED,
                                    group_message_id=message_id)
                return
            except SQLAlchemyError as exc:
                log.warning("post of follow-up %s not recorded yet (%s)", followup_id,
                            type(exc).__name__)
                await asyncio.sleep(wait)
                wait = min(wait * 2, LONGEST_RETRY.total_seconds())
