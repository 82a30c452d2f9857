"""Telegram handlers: thin adapters that unpack an update, call the engine, record, and reply.

Each handler is a small `async def`; `handlers()` lists them in the order python-telegram-bot
tries them. The CPU work of answering runs in a worker thread so one slow question never
blocks the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable

from sqlalchemy.exc import SQLAlchemyError
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageEntity, Update
from telegram.constants import ChatType
from telegram.error import Forbidden, TelegramError
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.answering import Answer, answer_entry, asks
from bot.delivery.inbox import is_recovered, may_repeat
from bot.eligibility.conversation import remind, resume_button, start_button, waiting_step
from bot.eligibility.loading import rules_of
from bot.handlers import feedback, inquiry
from bot.handlers.inquiry import TYPING, inquiry_button, offers_inquiry, take_typed_question
from bot.keyboards import KEY, button, fits, in_rows, keyboard, link, pattern, unpack
from bot.language import LANGUAGES, remember, speaks
from bot.learning import DECLINED, note_signal
from bot.replies import label, question_in, render, render_answer, source_name, to_plain_text
from bot.services import Services, asker_of, post_followup, services_of
from bot.settings import Settings
from bot.storage.models import Question, QuestionStatus, SignalKind, utcnow
from bot.storage.records import (
    QuestionRecord,
    followups_of,
    record_reply_failure,
)
from index import FaqEntry, KnowledgeBase, KnowledgeIndex
from index.analyzer import detect_language

log = logging.getLogger(__name__)


def entry_buttons(entries: Iterable[FaqEntry], language: str = "ko",
                  question_id: int | None = None) -> list[list[InlineKeyboardButton]]:
    """One button per FAQ entry, showing its question: pressed, it sends the answer. With the
    declined question it was suggested for (when that fits in the button's data), so that a
    press tells which wording meant which entry (bot/learning.py)."""
    return [[button(question_in(e, language), "a", *_entry_fields(e.id, question_id))]
            for e in entries]


def _entry_fields(entry_id: str, question_id: int | None) -> tuple[object, ...]:
    with_question = (entry_id, question_id)
    return with_question if question_id is not None and fits("a", *with_question) else (entry_id,)


def topic_buttons(knowledge: KnowledgeBase, language: str = "ko") -> list[InlineKeyboardButton]:
    """One button per topic that has entries, named in `language`."""
    return [button(getattr(c, language), "t", c.key) for c in knowledge.categories.values()
            if any(e.category == c.key for e in knowledge.entries)]


def answer_keyboard(result: Answer, question_id: int | None,
                    knowledge: KnowledgeBase | None = None, inquiry: bool = False,
                    resume: bool = False) -> InlineKeyboardMarkup | None:
    """Related questions, the sources' pages, the eligibility check, 👍/👎 on an answer; with
    `inquiry`, the offer to send a declined question to the secretariat; with `resume`, the
    way back to a running check."""
    language = result.language
    suggested = [d for d in result.suggestions if isinstance(d, FaqEntry)]
    rows = entry_buttons(suggested, language,
                         question_id if result.status in DECLINED else None)
    rules = rules_of(knowledge) if knowledge is not None else None
    if knowledge is not None and result.status == "answered" and result.document is not None:
        cited = [knowledge.sources[s] for s in result.document.sources if s in knowledge.sources]
        rows += in_rows([link(label("source", language, name=source_name(s, language)), s.url)
                         for s in cited if s.url])
    # "Does it apply to us?": walk them through, answered so or declined (their case is the
    # secretariat's) with that entry suggested.
    offered = [result.document] if result.status == "answered" else suggested
    if rules is not None and any(d is not None and d.id in rules.offer_check_for
                                 for d in offered):
        rows.append([start_button(language)])
    if result.status == "answered" and question_id is not None:
        rows.append([button("👍", "fb", question_id, 1), button("👎", "fb", question_id, -1)])
    if inquiry and question_id is not None and result.status in ("unanswered", "off_topic"):
        rows.append([inquiry_button(language, question_id)])
    if resume:
        rows.append([resume_button(language)])
    return keyboard(rows)


def question_text(message: Message, bot_username: str | None) -> str:
    """The question without the @mention that addressed it to the bot in a group."""
    text = message.text or ""
    if bot_username:
        mentions = message.parse_entities([MessageEntity.MENTION])
        for entity, value in sorted(mentions.items(), key=lambda p: -p[0].offset):
            if value.lstrip("@").casefold() == bot_username.casefold():
                text = text[: entity.offset] + text[entity.offset + entity.length:]
    return text.strip()


class AddressedToBot(filters.MessageFilter):
    """Private chats, or in groups: replies to the bot and messages that mention it."""

    def filter(self, message: Message) -> bool:
        if message.chat.type == ChatType.PRIVATE:
            return True
        bot = message.get_bot()
        reply = message.reply_to_message
        if reply is not None and reply.from_user is not None and reply.from_user.id == bot.id:
            return True
        username = (bot.username or "").casefold()
        mentions = message.parse_entities([MessageEntity.MENTION]).values()
        return bool(username) and any(m.lstrip("@").casefold() == username for m in mentions)


ADDRESSED = AddressedToBot()


# --- commands ---------------------------------------------------------------------------------


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Welcome: what the bot answers and stores, with example questions and topics."""
    index = services_of(context).index
    language = speaks(update.effective_user, context.user_data)
    rows = (entry_buttons(_examples(index), language)
            + in_rows(topic_buttons(index.knowledge, language)))
    if rules_of(index.knowledge) is not None:
        rows.append([start_button(language)])
    if offers_inquiry(context):
        rows.append([inquiry_button(language)])
    name = update.effective_user.first_name if update.effective_user else None
    await update.effective_message.reply_html(
        render("welcome", language, name=name), reply_markup=keyboard(rows))


def _examples(index: KnowledgeIndex, count: int = 4) -> list[FaqEntry]:
    """The first entry of the first few categories: one example per topic."""
    picked: dict[str, FaqEntry] = {}
    for entry in index.knowledge.entries:
        picked.setdefault(entry.category, entry)
    return list(picked.values())[:count]


async def topics(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/topics: the topics as buttons, one to a row."""
    language = speaks(update.effective_user, context.user_data)
    buttons = topic_buttons(services_of(context).index.knowledge, language)
    await update.effective_message.reply_html(render("topics", language),
                                              reply_markup=keyboard(in_rows(buttons, 1)))


async def choose_language(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/lang: the language the bot speaks, as buttons; /lang en or /lang ko switches at once."""
    wanted = (context.args or [""])[0].lower()
    if wanted in LANGUAGES:
        await _switch_language(update, context, wanted)
        return
    language = speaks(update.effective_user, context.user_data)
    await update.effective_message.reply_html(
        render("language", language),
        reply_markup=keyboard([[button(label("language", language, choice=lang), "lang", lang)
                                for lang in LANGUAGES]]))


async def language_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """한국어 / English under /lang: the question becomes the confirmation."""
    query = update.callback_query
    language = unpack(query.data).field(0)
    remember(context.user_data, language)
    await query.answer()
    try:
        await query.edit_message_text(render("language_set", language), parse_mode="HTML")
    except TelegramError:  # too old to edit: say it in a new message instead
        await query.message.reply_html(render("language_set", language))


async def _switch_language(update: Update, context: ContextTypes.DEFAULT_TYPE,
                           language: str) -> None:
    remember(context.user_data, language)
    await update.effective_message.reply_html(render("language_set", language))


async def my_questions(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/myquestions: the asker's questions that went to the secretariat, newest first, with
    their reference numbers, where each stands and the answer (or why it was closed)."""
    user = update.effective_user
    language = speaks(user, context.user_data)
    if update.effective_chat.type != ChatType.PRIVATE:  # the list is nobody else's business
        await update.effective_message.reply_html(render("my_questions_private", language))
        return
    try:
        async with services_of(context).database.session() as session:
            cases, total = await followups_of(session, user.id)
    except SQLAlchemyError:
        log.exception("questions of user %s not read", user.id)
        await update.effective_message.reply_html(render("unavailable", language))
        return
    await update.effective_message.reply_html(render("my_questions", language, cases=cases,
                                                     total=total))


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_html(
        render("unknown_command", speaks(update.effective_user, context.user_data)))


# --- questions --------------------------------------------------------------------------------


async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text message is a question: answer it, record it, reply."""
    services = services_of(context)
    message = update.effective_message
    user = update.effective_user
    text = question_text(message, context.bot.username)
    base = {"asker": asker_of(user), "chat_id": message.chat_id,
            "message_id": message.message_id, "text": text, "asked_at": utcnow()}
    if text:  # the language they write in is the one they read
        remember(context.user_data, detect_language(text))
    language = speaks(user, context.user_data)

    if len(text) > services.settings.max_question_chars:
        await services.database.save_question(
            QuestionRecord(status=QuestionStatus.TOO_LONG, **base))
        await message.reply_html(render("too_long", language, length=len(text),
                                        limit=services.settings.max_question_chars))
        return
    refusal = services.limiter.refuse(user.id)
    if refusal is not None:
        await services.database.save_question(QuestionRecord(status=QuestionStatus.LIMITED, **base))
        if refusal.first:  # told once per wait; the rest of a burst is recorded, not answered
            await message.reply_html(render("rate_limited", language, seconds=refusal.seconds))
        return
    if message.chat.type == ChatType.PRIVATE and context.user_data.pop(TYPING, None):
        # After "사무국에 직접 문의" on /start: the asker wants a person, not the bot.
        await take_typed_question(update, context,
                                  QuestionRecord(status=QuestionStatus.DIRECT, **base))
        return

    index = services.index  # one snapshot for the whole question, even if a reload swaps it
    result = await services.answerer.answer(text, index, services.settings.answering_rules())
    # Typed while the check waits on a step: a question the knowledge answers is answered, with
    # the way back to the check; anything else ("조선 기자재예요") was meant for the check.
    checking = waiting_step(context) is not None
    reminded = checking and (result.status != "answered" or not asks(text))
    hit = result.hit
    recorded = await services.database.save_question(QuestionRecord(
        status=QuestionStatus(result.status),
        entry_id=result.document.id if result.document else None,
        score=hit.score if hit else None, coverage=hit.coverage if hit else None,
        knowledge_version=index.version, wants_followup=result.followup and not reminded,
        **base))
    if recorded.duplicate and not is_recovered(update):
        return  # a redelivered update: the user has had this reply already
    if reminded:
        await remind(update, context, typed=True)
        return
    if recorded.followup_id is not None:
        # The follow-up row is the promise: it is posted whether or not the reply gets out.
        await post_followup(context.application, recorded.followup_id)
    html = render_answer(result, index.knowledge, reference=recorded.followup_id,
                         queued=recorded.spooled and result.followup, repeat=may_repeat(update))
    try:
        await message.reply_html(html, reply_markup=answer_keyboard(
            result, recorded.question_id, index.knowledge,
            inquiry=recorded.followup_id is None and offers_inquiry(context), resume=checking),
            do_quote=message.chat.type != ChatType.PRIVATE)
    except TelegramError as exc:  # already tried again for SEND_RETRY_SECONDS
        await _reply_failed(services, recorded.question_id, exc)


async def _reply_failed(services: Services, question_id: int | None, error: TelegramError
                        ) -> None:
    """A reply that could not be sent: logged with its question, and listed in /pending so
    that the secretariat can reach the asker another way."""
    log.error("reply to question %s not sent: %s", question_id, error)
    if question_id is None:
        return  # spooled: the database is away, the log line is all there is
    try:
        async with services.database.session() as session:
            await record_reply_failure(session, question_id, str(error))
    except SQLAlchemyError:
        log.exception("unsent reply to question %s not recorded", question_id)


async def not_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, photos, voice, files: say what the bot can read."""
    message = update.effective_message
    kind = "document" if message.document else "media"
    await message.reply_html(render("not_text", speaks(update.effective_user, context.user_data),
                                    kind=kind))


async def edited(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_html(
        render("edited", speaks(update.effective_user, context.user_data)))


# --- buttons ----------------------------------------------------------------------------------


async def show_entry(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A question button: send that FAQ answer."""
    query = update.callback_query
    services = services_of(context)
    index = services.index
    language = speaks(update.effective_user, context.user_data)
    press = unpack(query.data)
    entry_id = press.field(0)
    entry = next((e for e in index.knowledge.entries if e.id == entry_id), None)
    if entry is None:
        await query.answer(label("gone", language, "entry"), show_alert=True)
        return
    await query.answer()
    if (question_id := press.id(1)) is not None:
        await _note_pressed(services, question_id, query.from_user.id, entry)
    # Related entries are searched for: answering work, off the event loop like a question's.
    result = await asyncio.to_thread(answer_entry, entry, index,
                                     services_of(context).settings.answering_rules(), language)
    await query.message.reply_html(render_answer(result, index.knowledge),
                                   reply_markup=answer_keyboard(result, None, index.knowledge))


async def _note_pressed(services: Services, question_id: int, user_id: int,
                        entry: FaqEntry) -> None:
    """The asker of a declined question chose this entry: their wording may mean it."""
    try:
        async with services.database.session() as session:
            question = await session.get(Question, question_id)
    except SQLAlchemyError:
        return  # a hint lost; the answer is on its way all the same
    if question is not None and question.person_id == user_id and question.status in DECLINED:
        await note_signal(services.database, question, services.index.knowledge, entry.id,
                          SignalKind.PRESSED)


async def show_topic(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A topic button: list that topic's FAQ questions as buttons."""
    query = update.callback_query
    knowledge = services_of(context).index.knowledge
    language = speaks(update.effective_user, context.user_data)
    category = knowledge.categories.get(unpack(query.data).field(0))
    if category is None:
        await query.answer(label("gone", language, "topic"), show_alert=True)
        return
    await query.answer()
    entries = [e for e in knowledge.entries if e.category == category.key]
    await query.message.reply_html(
        render("topic", language, name=getattr(category, language), count=len(entries)),
        reply_markup=keyboard(entry_buttons(entries, language)))


# --- errors -----------------------------------------------------------------------------------


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log with context; tell the user something went wrong without internals."""
    error_id = uuid.uuid4().hex[:8]
    where = ""
    if isinstance(update, Update):
        chat = update.effective_chat.id if update.effective_chat else None
        user = update.effective_user.id if update.effective_user else None
        where = f" update={update.update_id} chat={chat} user={user}"
    log.error("error %s while handling%s", error_id, where, exc_info=context.error)
    if not isinstance(update, Update):
        return
    language = speaks(update.effective_user, context.user_data)
    if update.callback_query is not None:
        # Stop the button's spinner: a press is answered whatever happened (unless it was
        # answered already, or is too old to answer).
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer(
                to_plain_text(render("error", language, error_id=error_id)), show_alert=True)
        return
    if update.effective_message is not None:
        if isinstance(context.error, Forbidden):
            return  # the user blocked the bot: nobody to tell
        try:
            await update.effective_message.reply_html(render("error", language,
                                                             error_id=error_id))
        except TelegramError:
            log.warning("could not tell the user about error %s", error_id)


def handlers(settings: Settings) -> list[BaseHandler]:
    """Every handler, in the order they are tried."""
    private_or_addressed = ADDRESSED
    media = (filters.Sticker.ALL | filters.PHOTO | filters.VOICE | filters.VIDEO
             | filters.AUDIO | filters.VIDEO_NOTE | filters.Document.ALL | filters.LOCATION
             | filters.CONTACT | filters.ANIMATION)
    return [
        *inquiry.handlers(),
        CommandHandler("start", start),
        CommandHandler("topics", topics),
        CommandHandler("myquestions", my_questions),
        CommandHandler("lang", choose_language),
        CallbackQueryHandler(show_entry, pattern=pattern("a", r"[^:]*(:\d+)?")),
        CallbackQueryHandler(show_topic, pattern=pattern("t", KEY)),
        CallbackQueryHandler(language_button, pattern=pattern("lang", "(ko|en)")),
        *feedback.handlers(),
        MessageHandler(filters.UpdateType.EDITED_MESSAGE & private_or_addressed, edited),
        MessageHandler(filters.COMMAND & private_or_addressed, unknown_command),
        MessageHandler(filters.TEXT & filters.UpdateType.MESSAGE & private_or_addressed, ask),
        MessageHandler(media & filters.UpdateType.MESSAGE & private_or_addressed, not_text),
    ]
