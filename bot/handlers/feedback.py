"""👍 / 👎 on an answer: one vote per answer, a reason for a 👎, and the way to the secretariat.

Callback data (bot/keyboards.py): fb:<question>:1 | fb:<question>:-1 (the vote),
fr:<question>:<reason> (why a 👎 answer missed), fu:<question> (send the question to the
secretariat). Each counts once; a press after that (a stale client, a forged button) changes
nothing and gets a short notice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError
from telegram import CallbackQuery, Message, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, ContextTypes

from bot.delivery.inbox import is_recovered
from bot.delivery.once import send_once
from bot.handlers.guards import queue_followup_once
from bot.keyboards import KEY, NUMBER, button, in_rows, keyboard, pattern, unpack, without
from bot.language import speaks
from bot.learning import note_signal
from bot.replies import label, maybe_repeat, render, to_plain_text
from bot.services import services_of
from bot.storage.models import FollowUpReason, Question, QuestionStatus, SignalKind
from bot.storage.records import set_feedback, set_feedback_reason

log = logging.getLogger(__name__)

# Why a 👎 answer missed; the words are in feedback_reason.html.j2. "other_question" means the
# bot answered something else than was asked: the question goes to the secretariat.
REASONS = ("wrong", "other_question", "incomplete", "outdated")


def _notice(kind: str, language: str) -> str:
    return label(kind, language, "feedback_notice")


async def vote(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """👍 / 👎 on an answer, once: the buttons give way to the thanks; a 👎 asks what missed
    and offers to send the question to the secretariat."""
    query = update.callback_query
    press = unpack(query.data)
    question_id, value = press.id(0), int(press.field(1))
    language = speaks(query.from_user, context.user_data)
    services = services_of(context)
    question, counted = None, False
    try:
        if question_id is not None:
            async with services.database.session() as session:
                question, counted = await set_feedback(session, question_id,
                                                       query.from_user.id, value)
    except SQLAlchemyError:
        log.exception("feedback not stored")
        await query.answer(to_plain_text(render("unavailable", language)), show_alert=True)
        return
    if question is None or question.person_id != query.from_user.id:
        await query.answer(_notice("not_asker", language), show_alert=True)
        return
    if not counted and not is_recovered(update):
        await query.answer(_notice("rated", language))
        return
    # Handled again after a crash, the vote may be this press's: the thanks go out once
    # per answer all the same.
    value = question.feedback or value
    await query.answer("👍" if value > 0 else "👎")
    if value > 0 and question.status == QuestionStatus.ANSWERED and question.entry_id:
        # Their words got the right answer: a wording the entry may want to list.
        await note_signal(services.database, question, services.index.knowledge,
                          question.entry_id, SignalKind.LIKED)
    await drop_buttons(query, "fb")
    markup = None
    if value < 0:
        reasons = [button(label("", language, "feedback_reason", key=key), "fr", question_id, key)
                   for key in REASONS]
        markup = keyboard([*in_rows(reasons), [
            button(label("send_followup", language), "fu", question_id)]])

    async def thank(repeat: bool) -> Message:
        return await query.message.reply_html(
            maybe_repeat(render("feedback_thanks", language, value=value), repeat, language),
            reply_markup=markup)

    await send_once(services.database, update, f"feedback-thanks:{question_id}", thank)


async def reason(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Why a 👎 answer missed, once; "다른 질문이었음" sends the question to the secretariat."""
    query = update.callback_query
    press = unpack(query.data)
    question_id, key = press.id(0), press.field(1)
    language = speaks(query.from_user, context.user_data)
    if key not in REASONS:
        await query.answer(to_plain_text(render("stale_button", language)), show_alert=True)
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
        await query.answer(to_plain_text(render("unavailable", language)), show_alert=True)
        return
    if question is None or question.person_id != query.from_user.id:
        await query.answer(_notice("not_asker", language), show_alert=True)
        return
    if not counted and not is_recovered(update):
        await query.answer(_notice("reason_given", language))
        return
    if key == "other_question":
        await _send_to_secretariat(update, context, question_id, language)
        return
    await query.answer(_notice("reason_thanks", language))
    await drop_buttons(query, "fr")


async def request_followup(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """After a 👎: open a follow-up for the question, once however often it is pressed."""
    query = update.callback_query
    question_id = unpack(query.data).id()
    language = speaks(query.from_user, context.user_data)
    services = services_of(context)
    try:
        async with services.database.session() as session:
            question = await session.get(Question, question_id) if question_id else None
    except SQLAlchemyError:
        log.exception("question not read")
        await query.answer(to_plain_text(render("unavailable", language)), show_alert=True)
        return
    if question is None or question.person_id != query.from_user.id:
        await query.answer(_notice("not_asker_send", language), show_alert=True)
        return
    await _send_to_secretariat(update, context, question.id, language)


async def _send_to_secretariat(update: Update, context: ContextTypes.DEFAULT_TYPE,
                               question_id: int, language: str) -> None:
    """Open the question's follow-up (reason "feedback") and have it posted, once; the
    asker is told its number once."""
    query = update.callback_query
    followup_id = await queue_followup_once(update, context, question_id,
                                            FollowUpReason.FEEDBACK, language)
    if followup_id is None:
        return
    await drop_buttons(query)

    async def tell(repeat: bool) -> Message:
        return await query.message.reply_html(
            maybe_repeat(render("followup_sent", language, reference=followup_id), repeat,
                         language))

    await send_once(services_of(context).database, update, f"followup-sent:{followup_id}",
                    tell)


async def drop_buttons(query: CallbackQuery, *kinds: str, fields: Sequence[object] = ()
                       ) -> None:
    """Take the buttons of `kinds` (none given: all; with `fields`, those whose fields begin
    so) off the pressed message, keeping the others (related questions, the eligibility
    check)."""
    try:
        await query.edit_message_reply_markup(without(query.message.reply_markup, *kinds,
                                                      fields=fields))
    except TelegramError as exc:  # too old to edit: what was stored still counts once
        log.warning("buttons of message %s not updated: %s", query.message.message_id, exc)


def handlers() -> list[BaseHandler]:
    return [
        CallbackQueryHandler(vote, pattern=pattern("fb", NUMBER, "-?1")),
        CallbackQueryHandler(reason, pattern=pattern("fr", NUMBER, KEY)),
        CallbackQueryHandler(request_followup, pattern=pattern("fu", NUMBER)),
    ]
