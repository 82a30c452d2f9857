"""Admin commands: refresh the knowledge the bot serves and look at its state. Admins also add
policy documents by sending them (bot/handlers/uploads.py, which asks is_admin here).

Only ADMIN_USER_IDS may use them; every attempt is recorded in the audit log.
"""

from __future__ import annotations

import logging
from collections import Counter

from sqlalchemy.exc import SQLAlchemyError
from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, ContextTypes

from bot.handlers.guards import audited
from bot.language import reads
from bot.reloading import ReloadFailed
from bot.replies import render
from bot.services import services_of
from bot.storage.records import active_knowledge, most_disliked

log = logging.getLogger(__name__)


async def is_admin(update: Update, context: ContextTypes.DEFAULT_TYPE, action: str,
                   detail: str = "") -> bool:
    """Check the sender is an admin; record the attempt either way; refuse politely."""
    user = update.effective_user
    allowed = user is not None and user.id in services_of(context).settings.admin_user_ids
    return await audited(update, context, action, allowed, "admin_refused", detail)


async def reload_knowledge(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reload: rebuild the index from knowledge/ and serve it, or say what is broken."""
    if not await is_admin(update, context, "reload"):
        return
    services = services_of(context)
    result = await services.reloader.reload(by=update.effective_user.id)
    language = reads(update.effective_user, update.effective_chat, context.user_data)
    if isinstance(result, ReloadFailed):
        await update.effective_message.reply_html(render("reload_failed", language,
                                                         failure=result))
        return
    await update.effective_message.reply_html(render("reload_done", language, changes=result))


async def knowledge_state(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/kb: version, entries per topic, the oldest as-of dates, the most 👎 answers."""
    if not await is_admin(update, context, "kb"):
        return
    services = services_of(context)
    knowledge = services.index.knowledge
    counts = Counter(e.category for e in knowledge.entries)
    by_category = [(c, counts[c.key]) for c in knowledge.categories.values() if counts[c.key]]
    oldest = sorted(knowledge.documents, key=lambda d: d.as_of)[:5]
    try:
        async with services.database.session() as session:
            disliked = await most_disliked(session)
            active = await active_knowledge(session)
    except SQLAlchemyError:
        disliked, active = [], None
    await update.effective_message.reply_html(render(
        "kb", reads(update.effective_user, update.effective_chat, context.user_data),
        knowledge=knowledge, by_category=by_category, oldest=oldest, disliked=disliked,
        active=active))


def handlers() -> list[BaseHandler]:
    return [
        CommandHandler("reload", reload_knowledge),
        CommandHandler("kb", knowledge_state),
    ]
