"""What every update passes before the handlers, and what catches what they leave.

An update without a sender (a channel post, an anonymous admin) is set aside; a button press
is handled once by its callback id, however often it is delivered; a press no handler takes
(old or forged data) is answered with a short notice instead of a spinner that never stops.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.exc import SQLAlchemyError
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.delivery.inbox import is_recovered
from bot.language import speaks
from bot.replies import render, to_plain_text
from bot.services import post_followup, services_of
from bot.storage.models import FollowUpReason, utcnow
from bot.storage.records import (
    Claim,
    claim_send,
    forget_button_presses,
    log_action,
    open_new_followup,
)

log = logging.getLogger(__name__)


async def check_update(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Before every handler (group -1): stop what must not reach them."""
    if not isinstance(update, Update):
        return
    if update.effective_user is None and (update.effective_message is not None
                                          or update.callback_query is not None):
        log.info("update %s has no sender; ignored", update.update_id)
        raise ApplicationHandlerStop
    query = update.callback_query
    if query is None:
        return
    try:
        async with services_of(context).database.session() as session:
            claim = await claim_send(session, f"callback:{query.id}", update.update_id)
    except SQLAlchemyError:
        log.warning("button press %s not checked for repeats (database unavailable)", query.id)
        return  # better a rare repeat than a button that does nothing
    if claim is Claim.RESUMED:
        # Its process stopped while handling it: the handler carries on, each of its sends
        # made once by its own claim (bot/delivery/once.py).
        log.info("button press %s handled again after a restart", query.id)
    elif claim is not Claim.NEW:
        log.info("button press %s delivered again; handled already", query.id)
        raise ApplicationHandlerStop


async def forget_old_presses(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Daily: the presses Telegram can no longer deliver again need no record."""
    try:
        async with services_of(context).database.session() as session:
            await forget_button_presses(session, utcnow() - dt.timedelta(days=2))
    except SQLAlchemyError:
        log.warning("old button presses not pruned (database unavailable)")


async def unknown_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A press no handler took: old buttons of a removed feature, or forged data."""
    log.info("button data %r from user %s matches nothing", update.callback_query.data,
             update.effective_user.id)
    try:
        language = speaks(update.effective_user, context.user_data)
        await update.callback_query.answer(to_plain_text(render("stale_button", language)),
                                           show_alert=True)
    except TelegramError:
        log.warning("could not answer the button press %s", update.callback_query.id)


async def audited(update: Update, context: ContextTypes.DEFAULT_TYPE, action: str,
                  allowed: bool, refusal: str, detail: str = "") -> bool:
    """An attempt at a desk or admin action: written to the audit log, allowed or not, and
    refused politely (template `refusal`, in the person's language) when not allowed."""
    user = update.effective_user
    try:
        async with services_of(context).database.session() as session:
            await log_action(session, user.id if user else 0, action, detail[:500], allowed)
    except SQLAlchemyError:
        log.exception("audit log not written for %s by %s", action, user.id if user else None)
    if allowed:
        return True
    chat_id = update.effective_chat.id if update.effective_chat else None
    log.warning("refused %s for user %s in chat %s", action, user.id if user else None, chat_id)
    text = render(refusal, speaks(user, context.user_data))
    if update.callback_query:
        await update.callback_query.answer(to_plain_text(text), show_alert=True)
    elif update.effective_message:
        await update.effective_message.reply_html(text)
    return False


async def queue_followup_once(update: Update, context: ContextTypes.DEFAULT_TYPE,
                              question_id: int, reason: FollowUpReason, language: str = "ko"
                              ) -> int | None:
    """A button that sends a question to the secretariat: open its follow-up and have it
    posted, once however often it is pressed. The follow-up's number when this press opened
    it, or may have (handled again after a crash: the caller confirms, once per follow-up);
    None when the press was answered here (already sent, or the database is away)."""
    query = update.callback_query
    try:
        async with services_of(context).database.session() as session:
            followup_id, new = await open_new_followup(session, question_id, reason)
    except SQLAlchemyError:
        log.exception("follow-up not opened")
        await query.answer(to_plain_text(render("unavailable", language)), show_alert=True)
        return None
    if not new and not is_recovered(update):  # pressed again: the secretariat has it already
        await query.answer(to_plain_text(render("followup_sent", language,
                                                reference=followup_id)), show_alert=True)
        return None
    await query.answer()
    await post_followup(context.application, followup_id)
    return followup_id
