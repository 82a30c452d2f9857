"""The secretariat's desk in its Telegram group: follow-ups posted, replies delivered to askers.

A member replies to a follow-up's post; the reply goes to the person who asked, in their chat,
and the follow-up is marked answered. Commands list and inspect follow-ups and show figures.
Only members of the secretariat group and admins may use any of it.

One module over 400 lines on purpose: the whole desk, every handler behind the same check of
who may use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import (
    Bot,
    Message,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ChatMemberStatus
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.delivery.inbox import is_recovered
from bot.delivery.once import send_once
from bot.followups import (
    CLOSE_REASONS,
    asker_name,
    close_reason,
    close_reason_keyboard,
    draft_keyboard,
    event_labels,
    post_keyboard,
    status_label,
)
from bot.handlers.guards import audited
from bot.keyboards import KEY, NUMBER, ROW_ID_MAX, button, keyboard, parse_id, pattern, unpack
from bot.language import language_of, reads
from bot.learning import write_draft
from bot.replies import label, maybe_repeat, render, to_plain_text
from bot.reports.stats import period_stats
from bot.services import Services, services_of
from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.models import EventKind, FollowUp, FollowUpStatus, SentOnce, utcnow
from bot.storage.records import (
    Claim,
    FollowUpCase,
    add_event,
    close_followup,
    failed_replies,
    followup_case,
    followup_for_group_message,
    followups_between,
    open_followups,
    questions_between,
    record_answer,
    release_send,
    sent_message,
    unposted_count,
)

log = logging.getLogger(__name__)

PAGE = 5
MEMBER_STATUSES = {ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR,
                   ChatMemberStatus.MEMBER, ChatMemberStatus.RESTRICTED}


def _member_name(user: User) -> str:
    return user.full_name or (f"@{user.username}" if user.username else str(user.id))


async def is_secretariat(services: Services, bot: Bot, user: User, chat_id: int | None) -> bool:
    """Admins, anyone writing in the secretariat group, and its members in a private chat."""
    settings = services.settings
    if user.id in settings.admin_user_ids:
        return True
    group = settings.secretariat_chat_id
    if group is None:
        return False
    if chat_id == group:
        return True
    try:
        member = await bot.get_chat_member(group, user.id)
    except TelegramError:
        return False
    return member.status in MEMBER_STATUSES


async def _allowed(update: Update, context: ContextTypes.DEFAULT_TYPE, action: str) -> bool:
    """Check the asker may use the desk; log the attempt either way and refuse politely."""
    chat_id = update.effective_chat.id if update.effective_chat else None
    allowed = await is_secretariat(services_of(context), context.bot, update.effective_user,
                                   chat_id)
    detail = (update.effective_message.text or "") if update.effective_message else ""
    return await audited(update, context, action, allowed, "secretariat_refused", detail)


def _asker_language(context: ContextTypes.DEFAULT_TYPE, case: FollowUpCase) -> str:
    """The language the asker reads (bot/language.py), for what is sent to them."""
    person = case.person
    return language_of(context.application.user_data.get(case.question.person_id),
                       person.language_code if person else None)


async def on_group_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A member replies to a follow-up's post: deliver it to the asker, once per reply
    message however often it arrives; an edit of the reply edits what the asker received."""
    message = update.effective_message
    reply_to = message.reply_to_message
    if reply_to is None or reply_to.from_user is None or reply_to.from_user.id != context.bot.id:
        return
    services = services_of(context)
    text = (message.text or message.caption or "").strip()
    async with services.database.session() as session:
        followup = await followup_for_group_message(session, reply_to.message_id)
        if followup is None and (posted_id := _post_followup_id(reply_to)) is not None:
            # A reply faster than the poster's record of its post: the post's buttons say
            # which follow-up it is.
            followup = await session.get(FollowUp, posted_id)
        if followup is None or not text:
            return
        case = await followup_case(session, followup.id)
    if not await _allowed(update, context, "answer_followup"):
        return
    key = f"secretariat-reply:{message.chat_id}:{message.message_id}"
    database = services.database
    if update.edited_message is not None:
        async with database.session() as session:
            sent = await sent_message(session, key)
        if sent is not None:
            await _edit_delivered(update, context, case, sent, text)
            return
    addition = case.followup.status == FollowUpStatus.ANSWERED
    member = message.from_user.id
    language = _asker_language(context, case)

    async def deliver(repeat: bool) -> Message:
        return await context.bot.send_message(
            case.question.chat_id,
            maybe_repeat(render("secretariat_answer", language, followup_id=followup.id,
                                question=case.question.text, answer=text, addition=addition,
                                edited=False), repeat, language),
            parse_mode="HTML",
            reply_parameters=ReplyParameters(case.question.message_id,
                                             allow_sending_without_reply=True))

    async def answered(session: AsyncSession, delivered: Message) -> None:
        await record_answer(session, followup.id, member, text)

    try:
        # Once per reply message, however often it arrives; a crash mid-way is carried on
        # by the same update handled again (bot/delivery/once.py).
        claim = await send_once(database, update, key, deliver, answered)
    except (Forbidden, BadRequest) as exc:
        reason = to_plain_text(render("blocked")) if isinstance(exc, Forbidden) else exc.message
        async with database.session() as session:
            await add_event(session, followup.id, EventKind.DELIVERY_FAILED, member,
                            f"{reason}: {text}")
        await message.reply_html(render("secretariat_delivery_failed", followup_id=followup.id,
                                        reason=reason))
        return
    # transient failures (retried for SEND_RETRY_SECONDS already) raise: on_error says so
    if claim is Claim.ELSEWHERE:
        return  # another update of this reply is delivering it
    if claim is Claim.SENT:
        if not is_recovered(update):
            return  # this reply reached the asker already (a redelivered update)
        addition = await _was_addition(database, followup.id)

    async def confirm(repeat: bool) -> Message:
        return await message.reply_html(maybe_repeat(render(
            "secretariat_delivered", followup_id=followup.id, asker_name=asker_name(case),
            addition=addition), repeat), reply_markup=draft_keyboard(followup.id))

    async def confirmed(session: AsyncSession, confirmation: Message) -> None:
        await add_event(session, followup.id, EventKind.DELIVERED, member,
                        group_message_id=confirmation.message_id)

    await send_once(database, update, f"{key}:confirmed", confirm, confirmed)


async def _was_addition(database: Database, followup_id: int) -> bool:
    """Whether the last answer recorded for a follow-up added to an earlier one."""
    async with database.session() as session:
        case = await followup_case(session, followup_id)
    answers = ([e for e in case.events if e.kind in (EventKind.ANSWER, EventKind.ADDITION)]
               if case else [])
    return bool(answers) and answers[-1].kind == EventKind.ADDITION


def _post_followup_id(post: Message) -> int | None:
    """The follow-up a post is about, from its buttons (see post_keyboard)."""
    markup = post.reply_markup
    for row in markup.inline_keyboard if markup else ():
        for pressable in row:
            press = unpack(pressable.callback_data)
            if press.kind == "sc":
                return press.id()
    return None


async def _edit_delivered(update: Update, context: ContextTypes.DEFAULT_TYPE,
                          case: FollowUpCase, sent: SentOnce, text: str) -> None:
    """A member edited a reply the asker has: correct the asker's copy in place."""
    if sent.message_id is None:
        return  # still being sent, or its sender died mid-way: nothing to edit yet
    try:
        await context.bot.edit_message_text(
            render("secretariat_answer", _asker_language(context, case),
                   followup_id=case.followup.id, question=case.question.text, answer=text,
                   addition=False, edited=True),
            chat_id=sent.chat_id, message_id=sent.message_id, parse_mode="HTML")
    except BadRequest as exc:
        if "not modified" in exc.message:
            return  # an edit of something else than the text (or the same text again)
        raise
    async with services_of(context).database.session() as session:
        await add_event(session, case.followup.id, EventKind.EDITED, update.effective_user.id,
                            text)
    await update.effective_message.reply_html(render(
        "secretariat_edit_delivered", followup_id=case.followup.id,
        asker_name=asker_name(case)))


async def on_post_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Buttons on a follow-up's post: close it (asking the reason first), mark a gap, or
    propose an FAQ entry."""
    query = update.callback_query
    if not await _allowed(update, context, f"button:{query.data}"):
        return
    press = unpack(query.data)
    kind, followup_id = press.kind, press.id()
    if followup_id is None:
        await query.answer(render("followup_missing"), show_alert=True)
        return
    if kind == "sf":
        await _draft_once(update, context, followup_id)
        return
    services = services_of(context)
    if kind == "sc":
        async with services.database.session() as session:
            followup = await session.get(FollowUp, followup_id)
        if followup is None:
            await query.answer(render("followup_missing"), show_alert=True)
        elif followup.status == FollowUpStatus.CLOSED:
            await query.answer(render("followup_unchanged", kb_gap=False))
        else:
            await query.answer()

            async def ask(repeat: bool) -> Message:
                return await query.message.reply_html(
                    maybe_repeat(render("secretariat_close_ask", followup_id=followup_id),
                                 repeat),
                    reply_markup=close_reason_keyboard(followup_id))

            await send_once(services.database, update, f"callback:{query.id}:ask", ask)
        return
    async with services.database.session() as session:
        followup, changed = await close_followup(session, followup_id, query.from_user.id,
                                                 kb_gap=True)
    if followup is None:
        await query.answer(render("followup_missing"), show_alert=True)
        return
    if not changed and not is_recovered(update):
        # pressed again, or by a second member: the group was told already
        await query.answer(render("followup_unchanged", kb_gap=True))
        return
    await query.answer()
    await _tell_group_closed(update, context, followup_id, kb_gap=True, reason=None,
                             asker=None)


async def on_close_reason(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A reason chosen for closing a follow-up: close it, and tell the asker why (unless the
    secretariat answered them already). Pressed again, it changes nothing; handled again
    after a crash, it tells whom it had not told yet."""
    query = update.callback_query
    if not await _allowed(update, context, f"button:{query.data}"):
        return
    press = unpack(query.data)
    followup_id, key = press.id(), press.field(1)
    if followup_id is None or key not in CLOSE_REASONS:
        await query.answer(render("followup_missing"), show_alert=True)
        return
    reason = close_reason(key)
    services = services_of(context)
    async with services.database.session() as session:
        followup, changed = await close_followup(session, followup_id, query.from_user.id,
                                                 reason=reason)
        case = await followup_case(session, followup_id) if followup is not None else None
    if followup is None or case is None:
        await query.answer(render("followup_missing"), show_alert=True)
        return
    # Handled again after a crash, the follow-up may have been closed by this very press.
    if not changed and not (is_recovered(update) and case.followup.status == "closed"):
        await query.answer(render("followup_unchanged", kb_gap=False))
        return
    await query.answer()
    with contextlib.suppress(TelegramError):  # the choice is made: the buttons go
        await query.edit_message_reply_markup(None)
    asker = "answered" if case.followup.answered_at else await _tell_asker_closed(
        update, context, case, key)
    await _tell_group_closed(update, context, followup_id, kb_gap=False, reason=reason,
                             asker=asker)


async def _tell_group_closed(update: Update, context: ContextTypes.DEFAULT_TYPE,
                             followup_id: int, kb_gap: bool, reason: str | None,
                             asker: str | None) -> None:
    """Tell the group a follow-up was closed (or marked a gap), once per follow-up."""
    query = update.callback_query

    async def tell(repeat: bool) -> Message:
        return await query.message.reply_html(maybe_repeat(render(
            "secretariat_closed", followup_id=followup_id, kb_gap=kb_gap,
            by=_member_name(query.from_user), reason=reason, asker=asker), repeat))

    kind = "gap" if kb_gap else "closed"
    await send_once(services_of(context).database, update, f"followup-{kind}:{followup_id}",
                    tell)


async def _tell_asker_closed(update: Update, context: ContextTypes.DEFAULT_TYPE,
                             case: FollowUpCase, key: str) -> str:
    """Tell the asker their question was closed, and why (reason `key`, in their language),
    once: "told", or why they were not."""
    database = services_of(context).database
    language = _asker_language(context, case)
    reason = close_reason(key, language)

    async def tell(repeat: bool) -> Message:
        return await context.bot.send_message(
            case.question.chat_id,
            maybe_repeat(render("followup_closed", language, followup_id=case.followup.id,
                                question=case.question.text, reason=reason), repeat,
                         language),
            parse_mode="HTML",
            reply_parameters=ReplyParameters(case.question.message_id,
                                             allow_sending_without_reply=True))

    try:
        await send_once(database, update, f"followup-closed-asker:{case.followup.id}", tell)
    except (Forbidden, BadRequest) as exc:
        failure = to_plain_text(render("blocked")) if isinstance(exc, Forbidden) else exc.message
        async with database.session() as session:
            await add_event(session, case.followup.id, EventKind.DELIVERY_FAILED,
                            text=f"{failure}: {reason}")
        return failure
    return "told"


async def pending(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/pending: open follow-ups, oldest first, paged with buttons."""
    if not await _allowed(update, context, "pending"):
        return
    offset = 0
    if update.callback_query:
        offset = min(int(unpack(update.callback_query.data).field(0)[:10]), ROW_ID_MAX)
        await update.callback_query.answer()
    async with services_of(context).database.session() as session:
        cases, total = await open_followups(session, offset, PAGE)
        unposted = await unposted_count(session)
        unsent, unsent_total = await failed_replies(session)
    buttons = []
    if offset > 0:
        buttons.append(button(label("previous"), "pg", max(0, offset - PAGE)))
    if offset + PAGE < total:
        buttons.append(button(label("next"), "pg", offset + PAGE))
    text = render("pending", cases=cases, total=total, first=offset + 1,
                  last=offset + len(cases), unposted=unposted, unsent=unsent,
                  unsent_total=unsent_total)
    markup = keyboard([buttons])
    if update.callback_query:
        await update.callback_query.edit_message_text(text, parse_mode="HTML",
                                                      reply_markup=markup)
    else:
        await update.effective_message.reply_html(text, reply_markup=markup)


def _followup_number(context: ContextTypes.DEFAULT_TYPE) -> int | None:
    args = context.args or []
    return parse_id(args[0]) if len(args) == 1 else None


async def show_followup(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/followup N: one follow-up with its history."""
    if not await _allowed(update, context, "followup"):
        return
    number = _followup_number(context)
    if number is None:
        await update.effective_message.reply_html(render("usage", command="followup"))
        return
    async with services_of(context).database.session() as session:
        case = await followup_case(session, number)
    if case is None:
        await update.effective_message.reply_html(render("tofaq_refused", followup_id=number,
                                                         missing=True))
        return
    await update.effective_message.reply_html(render(
        "followup_detail", case=case, asker_name=asker_name(case),
        status_label=status_label(case.followup.status), event_labels=event_labels()),
        reply_markup=post_keyboard(case.followup.id))


async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats [days]: questions, answer rate, follow-ups, time to answer, unanswered terms."""
    if not await _allowed(update, context, "stats"):
        return
    args = context.args or []
    asked = parse_id(args[0]) if args else None  # "²" is a digit to str.isdigit, not to int
    days = asked if asked is not None and asked <= 3650 else 7
    since = utcnow() - dt.timedelta(days=days)
    services = services_of(context)
    async with services.database.session() as session:
        questions = await questions_between(session, since)
        cases = await followups_between(session, since)
    # The unanswered questions' terms are analysed with the index: off the event loop.
    figures = await asyncio.to_thread(period_stats, questions, cases, services.index, since)
    await update.effective_message.reply_html(render(
        "stats", reads(update.effective_user, update.effective_chat, context.user_data),
        stats=figures, days=days))


async def to_faq(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/tofaq N: turn an answered follow-up into an FAQ entry proposal for review."""
    if not await _allowed(update, context, "tofaq"):
        return
    number = _followup_number(context)
    if number is None:
        await update.effective_message.reply_html(render("usage", command="tofaq"))
        return
    await _propose_faq(update, context, number)


async def _propose_faq(update: Update, context: ContextTypes.DEFAULT_TYPE,
                       followup_id: int) -> None:
    """/tofaq N: as the buttons (_draft_once), the draft is written once; asked again, the
    command says it was made (an admin may be editing it in knowledge/review/)."""
    message = update.effective_message

    async def notice(text: str) -> None:
        await message.reply_html(text)

    await _write_draft_once(update, context, followup_id, message, notice)


async def _draft_once(update: Update, context: ContextTypes.DEFAULT_TYPE,
                      followup_id: int) -> None:
    """The post's "FAQ 제안 만들기" and the confirmation's "FAQ로 만들기": write the draft and
    say where once, however often either is pressed or a press is delivered; a later press is
    told it was made (the draft may have been approved or discarded since)."""
    query = update.callback_query

    async def notice(text: str) -> None:
        await query.answer(to_plain_text(text), show_alert=True)

    if await _write_draft_once(update, context, followup_id, query.message, notice):
        await query.answer()


async def _write_draft_once(update: Update, context: ContextTypes.DEFAULT_TYPE,
                            followup_id: int, reply_to: Message,
                            notice: Callable[[str], Awaitable[None]]) -> bool:
    """Write follow-up N's FAQ draft and say where in reply to `reply_to`, once per
    follow-up whichever command or button asks; True when written now. Otherwise `notice`
    tells why: the follow-up is missing or unanswered, the draft cannot be written now, or it
    was made before."""
    services = services_of(context)
    async with services.database.session() as session:
        case = await followup_case(session, followup_id)
    if case is None or not case.followup.answer:
        await notice(render("tofaq_refused", followup_id=followup_id, missing=case is None))
        return False
    written: list[Path] = []

    async def write_and_tell(repeat: bool) -> Message:
        written.append(await _write_draft(services, case))
        return await reply_to.reply_html(maybe_repeat(
            _draft_written(services, followup_id, written[-1]), repeat))

    async def noted(session: AsyncSession, told: Message) -> None:
        await add_event(session, followup_id, EventKind.PROPOSAL, update.effective_user.id,
                        str(written[-1]))

    key = f"faq-draft:{followup_id}"
    try:
        claim = await send_once(services.database, update, key, write_and_tell, noted)
    except OSError:
        log.exception("FAQ draft of follow-up %s not written", followup_id)
        async with services.database.session() as session:
            await release_send(session, key)  # a later press tries again
        await notice(render("unavailable"))
        return False
    if claim in (Claim.SENT, Claim.ELSEWHERE):
        await notice(render("tofaq_made", followup_id=followup_id))
        return False
    return True


async def _write_draft(services: Services, case: FollowUpCase) -> Path:
    # The closest entries are a search over the index: off the event loop, with the write.
    return await asyncio.to_thread(write_draft, case, services.settings.knowledge_dir,
                                   services.index)


def _draft_written(services: Services, followup_id: int, path: Path) -> str:
    """Where the draft is, from the project's root when it is under it."""
    root = services.settings.knowledge_dir.parent
    return render("tofaq_written", followup_id=followup_id,
                  path=path.relative_to(root) if path.is_relative_to(root) else path)


async def send_digest(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Daily: follow-ups open for more than a day, to the secretariat group."""
    services = services_of(context)
    group = services.settings.secretariat_chat_id
    if group is None:
        return
    async with services.database.session() as session:
        cases = await followups_between(session, until=utcnow() - dt.timedelta(days=1),
                                        status=FollowUpStatus.OPEN)
    if cases:
        await context.bot.send_message(group, render("digest", cases=cases), parse_mode="HTML")


def handlers(settings: Settings) -> list[BaseHandler]:
    """The desk's handlers; they come before the question handlers."""
    group = settings.secretariat_chat_id
    in_group = filters.Chat(group) if group is not None else filters.Chat([])
    return [
        CommandHandler("pending", pending),
        CommandHandler("followup", show_followup),
        CommandHandler("stats", stats),
        CommandHandler("tofaq", to_faq),
        CallbackQueryHandler(pending, pattern=pattern("pg", NUMBER)),
        CallbackQueryHandler(on_post_button, pattern=pattern("s[cgf]", NUMBER)),
        CallbackQueryHandler(on_close_reason, pattern=pattern("sr", NUMBER, KEY)),
        MessageHandler(in_group & filters.REPLY & (filters.TEXT | filters.CAPTION)
                    & ~filters.COMMAND, on_group_reply),
    ]
