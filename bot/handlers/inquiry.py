"""Asking a person on purpose: "사무국에 직접 문의" under a decline or on /start queues a
question for the secretariat, like a follow-up, after the asker has seen what is shared.

Callback data (bot/keyboards.py): dq:<question> (offer), dq:new (type a question first),
dqs:<question> (send), dqk:<question> (do not send). A press is handled once by its callback
id (guards.py), and a question is queued once however often "send" is pressed.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from telegram import CallbackQuery, ForceReply, InlineKeyboardButton, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, ContextTypes

from bot.delivery.inbox import is_recovered
from bot.handlers.guards import queue_followup_once
from bot.keyboards import NUMBER, button, keyboard, pattern, unpack
from bot.language import speaks
from bot.replies import label, render, to_plain_text
from bot.services import services_of
from bot.storage.models import FollowUpReason, Person, Question
from bot.storage.records import QuestionRecord

log = logging.getLogger(__name__)

# context.user_data[TYPING]: set by "사무국에 직접 문의" on /start; the next text is the question.
TYPING = "direct_inquiry"


def inquiry_button(language: str, question_id: int | None = None) -> InlineKeyboardButton:
    """The button that offers to send a question (or, without one, a question to type) to the
    secretariat."""
    return button(label("direct", language, "inquiry_button"), "dq", question_id or "new")


def offers_inquiry(context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Only with a secretariat group to receive what is sent."""
    return services_of(context).settings.secretariat_chat_id is not None


async def _own_question(query: CallbackQuery, context: ContextTypes.DEFAULT_TYPE
                        ) -> tuple[Question, Person | None] | None:
    """The question the pressed button is about, when the presser asked it."""
    question_id = unpack(query.data).id()
    async with services_of(context).database.session() as session:
        question = await session.get(Question, question_id) if question_id else None
        person = await session.get(Person, question.person_id) if question else None
    if question is None or question.person_id != query.from_user.id:
        language = speaks(query.from_user, context.user_data)
        await query.answer(label("not_asker_send", language, "feedback_notice"),
                           show_alert=True)
        return None
    return question, person


async def offer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """"사무국에 직접 문의": on /start, ask for the question; under a decline, say what would
    be shared and ask for consent."""
    query = update.callback_query
    language = speaks(query.from_user, context.user_data)
    if unpack(query.data).field(0) == "new":
        await query.answer()
        context.user_data[TYPING] = True
        await query.message.reply_html(render("inquiry_ask", language), reply_markup=ForceReply(
            input_field_placeholder=label("placeholder", language, "inquiry_button")))
        return
    try:
        own = await _own_question(query, context)
    except SQLAlchemyError:
        log.exception("question for a direct inquiry not read")
        await query.answer(to_plain_text(render("unavailable", language)), show_alert=True)
        return
    if own is not None:
        await query.answer()
        await _ask_consent(query.message, *own, language)


async def _ask_consent(message: Message, question: Question, person: Person | None,
                       language: str) -> None:
    name = " ".join(p for p in (person.first_name, person.last_name) if p) if person else ""
    html = render("inquiry_consent", language, question=question.text, name=name,
                  username=person.username if person else None)
    await message.reply_html(html, reply_markup=keyboard([[
        button(label("send", language, "inquiry_button"), "dqs", question.id),
        button(label("keep", language, "inquiry_button"), "dqk", question.id)]]))


async def take_typed_question(update: Update, context: ContextTypes.DEFAULT_TYPE,
                              record: QuestionRecord) -> None:
    """The question typed after "사무국에 직접 문의" on /start: stored (not answered by the bot,
    the asker wants a person) and offered for sending, with what would be shared."""
    services = services_of(context)
    language = speaks(update.effective_user, context.user_data)
    recorded = await services.database.save_question(record)
    if recorded.duplicate and not is_recovered(update):
        return  # a redelivered update: the consent was asked already
    if recorded.question_id is None:  # spooled: the database is away, nothing to send yet
        await update.effective_message.reply_html(render("unavailable", language))
        return
    async with services.database.session() as session:
        question = await session.get(Question, recorded.question_id)
        person = await session.get(Person, question.person_id)
    await _ask_consent(update.effective_message, question, person, language)


async def send(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Consent given: queue the question for the secretariat, once."""
    query = update.callback_query
    language = speaks(query.from_user, context.user_data)
    try:
        own = await _own_question(query, context)
    except SQLAlchemyError:
        log.exception("direct inquiry not queued")
        await query.answer(to_plain_text(render("unavailable", language)), show_alert=True)
        return
    if own is None:
        return
    followup_id = await queue_followup_once(update, context, own[0].id,
                                            FollowUpReason.DIRECT, language)
    if followup_id is not None:
        await _replace(query, render("followup_sent", language, reference=followup_id))


async def keep(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Consent refused: nothing is sent."""
    query = update.callback_query
    await query.answer()
    await _replace(query, render("inquiry_kept", speaks(query.from_user, context.user_data)))


async def _replace(query: CallbackQuery, html: str) -> None:
    """The consent message becomes its outcome, without buttons."""
    try:
        await query.edit_message_text(html, parse_mode="HTML")
    except BadRequest as exc:
        if "not modified" in exc.message:
            return  # it says so already (the press handled again after a crash)
        await query.message.reply_html(html)  # too old to edit: say it in a new message
    except TelegramError:
        await query.message.reply_html(html)


def handlers() -> list[BaseHandler]:
    return [
        CallbackQueryHandler(offer, pattern=pattern("dq", f"({NUMBER}|new)")),
        CallbackQueryHandler(send, pattern=pattern("dqs", NUMBER)),
        CallbackQueryHandler(keep, pattern=pattern("dqk", NUMBER)),
    ]
