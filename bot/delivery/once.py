"""Sends people must see once: a secretariat answer to its asker, the group's confirmation,
the notice that a follow-up was closed. Each is claimed under a key before it goes out and
noted with the message it became, so that however often its cause arrives it is sent once,
and a crash between the two is carried on by the same update handled again: sent again,
saying it may be a repeat (Telegram has no way to send a message only once).

The claim is the inbox's first-reply marks for one message (bot/delivery/inbox.py), kept by
the handler: an update with several such sends is handled again after a crash whatever its
first message's fate, and each of its sends finds its own claim.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import Message, Update
from telegram.error import TelegramError

from bot.delivery.inbox import handle_again_after_crash, sending_once
from bot.storage.database import Database
from bot.storage.records import Claim, claim_send, note_sent, release_send

log = logging.getLogger(__name__)


async def send_once(database: Database, update: Update, key: str,
                    send: Callable[[bool], Awaitable[Message]],
                    then: Callable[[AsyncSession, Message], Awaitable[object]] | None = None
                    ) -> Claim:
    """Send what `key` names unless it was sent: `send(repeat)` sends it, `repeat` saying
    whether it may have gone out before (this update was sending it when its process
    stopped); `then` records what the send means in the transaction that notes it. The
    claim as it was found: NEW or RESUMED (sent now), SENT or ELSEWHERE (nothing sent).

    A send that fails (after sending.py's retries) releases the claim, so that a later
    attempt may try again, and raises."""
    handle_again_after_crash(update)
    async with database.session() as session:
        claim = await claim_send(session, key, update.update_id)
    if claim in (Claim.SENT, Claim.ELSEWHERE):
        log.info("%s: sent already; not again", key)
        return claim
    if claim is Claim.RESUMED:
        log.warning("%s: its process stopped while sending it; sent again, marked as a "
                    "possible repeat", key)
    try:
        with sending_once(key):
            message = await send(claim is Claim.RESUMED)
    except TelegramError:
        async with database.session() as session:
            await release_send(session, key)
        raise
    async with database.session() as session:
        await note_sent(session, key, message.chat_id, message.message_id)
        if then is not None:
            await then(session, message)
        await session.commit()
    return claim
