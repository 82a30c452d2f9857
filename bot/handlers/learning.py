"""Admins decide what the knowledge base learns: /suggestions (wordings users asked, to add
as alternates) and /review (FAQ drafts from the secretariat's answers).

Callback data (bot/keyboards.py): ph:<suggestion>:a | ph:<suggestion>:r (accept, reject a
wording), rv:<draft>:a | rv:<draft>:d (approve, discard a draft). Every press is checked and
audited like the commands (bot/handlers/admin.py, guards.audited); the decisions themselves are
bot/learning.py's.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from telegram import InlineKeyboardButton, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.handlers.admin import is_admin
from bot.handlers.feedback import drop_buttons
from bot.keyboards import KEY, NUMBER, button, keyboard, pattern, unpack
from bot.language import speaks
from bot.learning import (
    Decision,
    Refresh,
    accept_suggestion,
    approve_draft,
    discard_draft,
    list_drafts,
    reject_suggestion,
    suggestions_by_entry,
)
from bot.reloading import ReloadFailed
from bot.replies import label, render, to_plain_text
from bot.services import Services, services_of
from bot.storage.records import log_action

log = logging.getLogger(__name__)

# Suggestions and drafts listed in one message (each has a row of buttons).
SHOWN = 10
# What a decision button's last field says.
SUGGESTION_CHOICES = {"a": "accept", "r": "reject"}
DRAFT_CHOICES = {"a": "approve", "d": "discard"}


def _suggestion_buttons(suggestion_id: int, language: str) -> list[InlineKeyboardButton]:
    return [button(label(choice, language, number=suggestion_id), "ph", suggestion_id, key)
            for key, choice in SUGGESTION_CHOICES.items()]


def _draft_buttons(name: str, language: str) -> list[InlineKeyboardButton]:
    return [button(label(choice, language, name=name), "rv", name, key)
            for key, choice in DRAFT_CHOICES.items()]


def _refresh(services: Services, by: int) -> Refresh:
    """Serve the knowledge folder as it now is, through the reload every process follows."""

    async def refresh() -> tuple[str, ...]:
        result = await services.reloader.reload(by=by)
        return result.errors if isinstance(result, ReloadFailed) else ()

    return refresh


async def _audit(services: Services, by: int, action: str, decision: Decision) -> None:
    """The change made, beside the attempt is_admin recorded."""
    detail = ": ".join(part for part in (decision.entry_id, decision.wording) if part)
    try:
        async with services.database.session() as session:
            await log_action(session, by, action, detail[:500])
    except SQLAlchemyError:
        log.exception("audit log not written for %s", action)


async def list_suggestions(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/suggestions: the wordings users asked, per entry, with accept and reject buttons."""
    if not await is_admin(update, context, "suggestions"):
        return
    services = services_of(context)
    language = speaks(update.effective_user, context.user_data)
    try:
        grouped = await suggestions_by_entry(services.database, services.index.knowledge)
    except SQLAlchemyError:
        log.exception("suggestions not read")
        await update.effective_message.reply_html(render("unavailable", language))
        return
    shown, rows = [], []
    for entry, suggested in grouped:
        room = SHOWN - sum(len(s) for _, s in shown)
        if room <= 0:
            break
        shown.append((entry, suggested[:room]))
        rows += [_suggestion_buttons(s.suggestion.id, language) for s in suggested[:room]]
    total = sum(len(s) for _, s in grouped)
    await update.effective_message.reply_html(
        render("suggestions", language, groups=shown, total=total), reply_markup=keyboard(rows))


async def decide_suggestion(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Accept (write it into its FAQ file, validate, reload) or reject a wording, once."""
    query = update.callback_query
    press = unpack(query.data)
    suggestion_id, choice = press.id(0), SUGGESTION_CHOICES[press.field(1)]
    if not await is_admin(update, context, f"suggestion_{choice}", f"#{press.field(0)}"):
        return
    language = speaks(query.from_user, context.user_data)
    if suggestion_id is None:
        await query.answer(to_plain_text(render("stale_button", language)), show_alert=True)
        return
    await query.answer()
    services = services_of(context)
    by = query.from_user.id
    if choice == "accept":
        decision = await accept_suggestion(services.database, services.index.knowledge,
                                           suggestion_id, by, _refresh(services, by))
    else:
        decision = await reject_suggestion(services.database, suggestion_id, by)
    if decision.outcome in ("accepted", "rejected"):
        await _audit(services, by, f"suggestion_{decision.outcome}", decision)
    if decision.outcome != "invalid":
        await drop_buttons(query, "ph", fields=[suggestion_id])
    await query.message.reply_html(render("suggestion_decided", language, number=suggestion_id,
                                          decision=decision))


async def review(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/review: the FAQ drafts waiting in knowledge/review/, with approve and discard."""
    if not await is_admin(update, context, "review"):
        return
    language = speaks(update.effective_user, context.user_data)
    drafts = list_drafts(services_of(context).settings.knowledge_dir)
    rows = [_draft_buttons(d.name, language) for d in drafts[:SHOWN]]
    await update.effective_message.reply_html(
        render("review", language, drafts=drafts[:SHOWN], total=len(drafts)),
        reply_markup=keyboard(rows))


async def decide_draft(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Approve a draft (into knowledge/faq/, validated and reloaded) or discard it."""
    query = update.callback_query
    press = unpack(query.data)
    name, choice = press.field(0), DRAFT_CHOICES[press.field(1)]
    if not await is_admin(update, context, f"draft_{choice}", name):
        return
    language = speaks(query.from_user, context.user_data)
    await query.answer()
    services = services_of(context)
    folder = services.settings.knowledge_dir
    by = query.from_user.id
    if choice == "approve":
        decision = await approve_draft(folder, name, _refresh(services, by))
    else:
        decision = await discard_draft(folder, name)
    if decision.outcome in ("approved", "discarded"):
        await _audit(services, by, f"draft_{decision.outcome}", decision)
    if decision.outcome != "invalid":
        await drop_buttons(query, "rv", fields=[name])
    await query.message.reply_html(render("review_decided", language, name=name,
                                          decision=decision))


def handlers() -> list[BaseHandler]:
    return [
        CommandHandler("suggestions", list_suggestions),
        CommandHandler("review", review),
        CallbackQueryHandler(decide_suggestion, pattern=pattern("ph", NUMBER, "[ar]")),
        CallbackQueryHandler(decide_draft, pattern=pattern("rv", KEY, "[ad]")),
    ]
