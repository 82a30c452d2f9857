"""👍 / 👎 on an answer: one vote per answer, a reason for a 👎, and the way to the secretariat.

Callback data: fb:<question>:1 | fb:<question>:-1 (the vote), fr:<question>:<reason> (why a 👎
answer missed), fu:<question> (send the question to the secretariat). Each counts once; a
press after that (a stale client, a forged button) changes nothing and gets a short notice.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, ContextTypes

from bot.delivery.inbox import is_recovered
from bot.delivery.once import send_once
from bot.handlers.guards import parse_id, queue_followup_once
from bot.replies import maybe_repeat, render, to_plain_text
from bot.services import services_of
from bot.storage.models import FollowUpReason, Question
from bot.storage.records import set_feedback, set_feedback_reason

log = logging.getLogger(__name__)

# Why a 👎 answer missed; the words are in feedback_reason.html.j2. "other_question" means the
# bot answered something else than was asked: the question goes to the secretariat.
REASONS = ("wrong", "other_question", "incomplete", "outdated")


def _reason_label(key: str) -> str:
    return to_plain_text(render("feedback_reason", key=key))


def _notice(kind: str) -> str:
    return to_plain_text(render("feedback_notice", kind=kind))


async def vote(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """👍 / 👎 on an answer, once: the buttons give way to the thanks; a 👎 asks what missed
    and offers to send the question to the secretariat."""
    query = update.callback_query
    _, raw_id, value = query.data.split(":")
    question_id = parse_id(raw_id)
    services = services_of(context)
    question, counted = None, False
    try:
        if question_id is not None:
            async with services.database.session() as session:
                question, counted = await set_feedback(session, question_id,
                                                       query.from_user.id, int(value))
    except SQLAlchemyError:
        log.exception("feedback not stored")
        await query.answer(render("unavailable"), show_alert=True)
        return
    if question is None or question.person_id != query.from_user.id:
        await query.answer(_notice("not_asker"), show_alert=True)
        return
    if not counted and not is_recovered(update):
        await query.answer(_notice("rated"))
        return
    # Handled again after a crash, the vote may be this press's: the thanks go out once
    # per answer all the same.
    value = str(question.feedback or value)
    await query.answer("👍" if int(value) > 0 else "👎")
    await _drop_buttons(query, "fb:")
    markup = None
    if int(value) < 0:
        reasons = [InlineKeyboardButton(_reason_label(key),
                                        callback_data=f"fr:{question_id}:{key}")
                   for key in REASONS]
        markup = InlineKeyboardMarkup([reasons[:2], reasons[2:], [InlineKeyboardButton(
            "사무국에 질문 보내기", callback_data=f"fu:{question_id}")]])

    async def thank(repeat: bool) -> Message:
        return await query.message.reply_html(
            maybe_repeat(render("feedback_thanks", value=int(value)), repeat),
            reply_markup=markup)

    await send_once(services.database, update, f"feedback-thanks:{question_id}", thank)


async def reason(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Why a 👎 answer missed, once; "다른 질문이었음" sends the question to the secretariat."""
    query = update.callback_query
    _, raw_id, key = query.data.split(":")
    question_id = parse_id(raw_id)
    if key not in REASONS:
        await query.answer(to_plain_text(render("stale_button")), show_alert=True)
        return
    services = services_of(context)
    question, counted = None, False
    try:
        if question_id is not None:
            async with services.database.session() as session:
                counted = await set_feedback_reason(session, question_id, query.from_user.id,
                                                    key)
                question = await session.get(Question, question_id)
    except SQLAlchemyError:
        log.exception("feedback reason not stored")
        await query.answer(render("unavailable"), show_alert=True)
        return
    if question is None or question.person_id != query.from_user.id:
        await query.answer(_notice("not_asker"), show_alert=True)
        return
    if not counted and not is_recovered(update):
        await query.answer(_notice("reason_given"))
        return
    if key == "other_question":
        await _send_to_secretariat(update, context, question_id)
        return
    await query.answer(_notice("reason_thanks"))
    await _drop_buttons(query, "fr:")


async def request_followup(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """After a 👎: open a follow-up for the question, once however often it is pressed."""
    query = update.callback_query
    question_id = parse_id(query.data.split(":")[1])
    services = services_of(context)
    try:
        async with services.database.session() as session:
            question = await session.get(Question, question_id) if question_id else None
    except SQLAlchemyError:
        log.exception("question not read")
        await query.answer(render("unavailable"), show_alert=True)
        return
    if question is None or question.person_id != query.from_user.id:
        await query.answer(_notice("not_asker_send"), show_alert=True)
        return
    await _send_to_secretariat(update, context, question.id)


async def _send_to_secretariat(update: Update, context: ContextTypes.DEFAULT_TYPE,
                               question_id: int) -> None:
    """Open the question's follow-up (reason "feedback") and have it posted, once; the
    asker is told its number once."""
    query = update.callback_query
    followup_id = await queue_followup_once(update, context, question_id,
                                            FollowUpReason.FEEDBACK)
    if followup_id is None:
        return
    await _drop_buttons(query, "")

    async def tell(repeat: bool) -> Message:
        return await query.message.reply_html(
            maybe_repeat(render("followup_sent", reference=followup_id), repeat))

    await send_once(services_of(context).database, update, f"followup-sent:{followup_id}",
                    tell)


async def _drop_buttons(query: CallbackQuery, prefix: str) -> None:
    """Take the buttons whose data starts with `prefix` ("" for all) off the pressed message,
    keeping the others (related questions, the eligibility check)."""
    markup = query.message.reply_markup
    rows = [[b for b in row
             if not (isinstance(b.callback_data, str) and b.callback_data.startswith(prefix))]
            for row in (markup.inline_keyboard if markup else ())]
    rows = [row for row in rows if row]
    try:
        await query.edit_message_reply_markup(InlineKeyboardMarkup(rows) if rows else None)
    except TelegramError as exc:  # too old to edit: what was stored still counts once
        log.warning("buttons of message %s not updated: %s", query.message.message_id, exc)


def handlers() -> list[BaseHandler]:
    return [
        CallbackQueryHandler(vote, pattern=r"^fb:\d+:-?1$"),
        CallbackQueryHandler(reason, pattern=r"^fr:\d+:[a-z_]+$"),
        CallbackQueryHandler(request_followup, pattern=r"^fu:\d+$"),
    ]
