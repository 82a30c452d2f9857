"""Admins add policy documents by sending them to the bot: .md, .txt, .pdf or .hwpx.

The conversation: an admin sends a file in a private chat; it is checked and converted
(bot/documents/); what the caption does not say (source, date, topic) is asked for; the files
are written, the knowledge is reloaded, and a reload that fails puts everything back as it was.
Every message is in the admin's language; a refusal's reason comes from upload_refusal.html.j2
by its code, and the audit log keeps it in Korean.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import warnings
from dataclasses import dataclass

from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError
from telegram import InlineKeyboardMarkup, Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.documents.caption import (
    parse_caption,
    parse_date,
    source_without_date,
    split_publisher,
)
from bot.documents.conversion import (
    EXTENSIONS,
    MAX_UPLOAD_BYTES,
    Converted,
    UploadRefused,
    convert,
    extension_of,
    one_line,
    too_big,
)
from bot.documents.policy import (
    DEFAULT_PUBLISHER,
    document_title,
    free_path,
    new_source_id,
    policy_markdown,
    policy_path,
    slugify,
    source_entry,
    source_ids_on_disk,
    write_upload,
)
from bot.handlers.admin import is_admin
from bot.handlers.questions import not_text
from bot.keyboards import KEY, WORD, button, in_rows, keyboard, pattern, unpack
from bot.language import speaks
from bot.reloading import ReloadFailed
from bot.replies import KST, label, render, to_plain_text
from bot.services import services_of
from bot.storage.records import log_action
from index.knowledge import KnowledgeError, Source, split_passages

log = logging.getLogger(__name__)

SOURCE, DATE, CATEGORY, OVERWRITE = range(4)
TIMEOUT_SECONDS = 600


@dataclass
class PendingUpload:
    token: str
    file_name: str
    converted: Converted
    slug: str
    caption_title: str | None
    source: str | None = None
    publisher: str | None = None
    date: dt.date | None = None
    category: str | None = None
    overwrite: bool | None = None


def _pending(context: ContextTypes.DEFAULT_TYPE) -> PendingUpload | None:
    return context.user_data.get("upload") if context.user_data is not None else None


def _language(update: object, context: ContextTypes.DEFAULT_TYPE) -> str:
    user = update.effective_user if isinstance(update, Update) else None
    return speaks(user, context.user_data)


def _reason(refused: UploadRefused, language: str) -> Markup:
    """Why a file is not taken, in words: upload_refusal.html.j2, by the refusal's code."""
    return Markup(render("upload_refusal", language, code=refused.code, **refused.details))


async def _audit(update: Update, context: ContextTypes.DEFAULT_TYPE, action: str,
                 detail: str, allowed: bool = True) -> None:
    services = services_of(context)
    try:
        async with services.database.session() as session:
            await log_action(session, update.effective_user.id, action, detail[:500], allowed)
    except SQLAlchemyError:
        log.exception("audit log not written for %s", action)


async def received(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """A document in a private chat: an admin's starts an upload; anyone else's is refused as
    before."""
    services = services_of(context)
    message = update.effective_message
    user = update.effective_user
    if user is None or user.id not in services.settings.admin_user_ids:
        # Anyone may send a file; a document to an admin-only feature is a refused attempt.
        document = message.document
        await _audit(update, context, "upload", f"{document.file_name or ''} "
                     f"({document.file_size or '?'} bytes)", allowed=False)
        await not_text(update, context)
        return ConversationHandler.END
    document = message.document
    file_name = (one_line(document.file_name or "")
                 or label("unnamed", _language(update, context), "upload_kind"))
    if not await is_admin(update, context, "upload",
                          f"{file_name} ({document.file_size or '?'} bytes)"):
        return ConversationHandler.END

    if extension_of(file_name) not in EXTENSIONS:
        return await _give_up(update, context,
                              UploadRefused("extension", extension=extension_of(file_name)),
                              file_name)
    if document.file_size is not None and document.file_size > MAX_UPLOAD_BYTES:
        return await _give_up(update, context, too_big(document.file_size), file_name)
    try:
        telegram_file = await document.get_file()
        data = bytes(await telegram_file.download_as_bytearray())
    except Exception:
        log.exception("upload %s not downloaded", file_name)
        return await _give_up(update, context, UploadRefused("not_downloaded"), file_name)
    try:
        converted = await asyncio.to_thread(convert, file_name, data)
    except UploadRefused as refused:
        return await _give_up(update, context, refused, file_name)
    except Exception:
        log.exception("upload %s not converted", file_name)
        return await _give_up(update, context, UploadRefused("not_converted"), file_name)

    caption = parse_caption(message.caption, services.index.knowledge.categories)
    source, publisher = split_publisher(caption.source) if caption.source else (None, None)
    context.user_data["upload"] = PendingUpload(
        token=secrets.token_hex(4), file_name=file_name, converted=converted,
        slug=slugify(file_name), caption_title=caption.title, source=source,
        publisher=caption.publisher or publisher, date=caption.date, category=caption.category)
    return await _next_step(update, context)


async def _ask(update: Update, context: ContextTypes.DEFAULT_TYPE, pending: PendingUpload,
               step: str, markup: InlineKeyboardMarkup | None = None, **extra: object) -> None:
    language = _language(update, context)
    await update.effective_message.reply_html(
        render("upload_ask", language, step=step, file_name=pending.file_name,
               kind=label(pending.converted.kind, language, "upload_kind"),
               sections=len(pending.converted.sections), **extra),
        reply_markup=markup)


async def _next_step(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """Ask for what is still missing, or write the document."""
    pending = _pending(context)
    if pending is None:
        return ConversationHandler.END
    services = services_of(context)
    language = _language(update, context)
    if pending.source is None:
        await _ask(update, context, pending, "source", first=True)
        return SOURCE
    if pending.date is None:
        await _ask(update, context, pending, "date", retry=False)
        return DATE
    categories = services.index.knowledge.categories
    if pending.category not in categories:
        buttons = [button(c.en if language == "en" else c.ko, "up", pending.token, "c", c.key)
                   for c in categories.values()]
        await _ask(update, context, pending, "category", keyboard(in_rows(buttons)))
        return CATEGORY
    policy_dir = services.settings.knowledge_dir / "policy"
    try:
        target = policy_path(policy_dir, pending.slug)
        if target.exists() and pending.overwrite is None:
            alternative = free_path(policy_dir, pending.slug)
            await _ask(update, context, pending, "overwrite", keyboard([[
                button(label("overwrite", language), "up", pending.token, "o", 1),
                button(label("new_name", language, name=alternative.name), "up", pending.token,
                       "o", 0)]]),
                name=target.name, new_name=alternative.name)
            return OVERWRITE
    except UploadRefused as refused:
        return await _give_up(update, context, refused)
    await _finish(update, context, pending)
    return ConversationHandler.END


async def got_source(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    pending = _pending(context)
    if pending is None:
        return ConversationHandler.END
    text = update.effective_message.text or ""
    source = source_without_date(text)
    if not source:
        await _ask(update, context, pending, "source", first=False)
        return SOURCE
    pending.source, publisher = split_publisher(source)
    pending.publisher = pending.publisher or publisher
    pending.date = pending.date or parse_date(text)
    return await _next_step(update, context)


async def got_date(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    pending = _pending(context)
    if pending is None:
        return ConversationHandler.END
    date = parse_date(update.effective_message.text or "")
    if date is None:
        await _ask(update, context, pending, "date", retry=True)
        return DATE
    pending.date = date
    return await _next_step(update, context)


async def got_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int | None:
    """The topic or the overwrite choice; buttons of an earlier upload are stale."""
    query = update.callback_query
    pending = _pending(context)
    press = unpack(query.data)
    token, kind, value = press.field(0), press.field(1), press.field(2)
    if pending is None or token != pending.token:
        await update.callback_query.answer(
            to_plain_text(render("upload_stale", _language(update, context))), show_alert=True)
        return None
    await query.answer()
    await query.edit_message_reply_markup(None)
    if kind == "c":
        if value not in services_of(context).index.knowledge.categories:
            return None
        pending.category = value
    elif kind == "o":
        pending.overwrite = value == "1"
    return await _next_step(update, context)


async def stale_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A topic or overwrite button pressed after its upload ended."""
    await update.callback_query.answer(
        to_plain_text(render("upload_stale", _language(update, context))), show_alert=True)


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    pending = context.user_data.pop("upload", None)
    await _audit(update, context, "upload_cancelled", pending.file_name if pending else "")
    await update.effective_message.reply_html(
        render("upload_cancelled", _language(update, context), timeout=False))
    return ConversationHandler.END


async def busy(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Another document while one is waiting for answers."""
    pending = _pending(context)
    await update.effective_message.reply_html(
        render("upload_busy", _language(update, context),
               file_name=pending.file_name if pending else ""))


async def timed_out(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    pending = context.user_data.pop("upload", None) if context.user_data is not None else None
    if isinstance(update, Update) and update.effective_chat is not None and pending:
        await context.bot.send_message(update.effective_chat.id,
                                       render("upload_cancelled", _language(update, context),
                                              timeout=True),
                                       parse_mode="HTML")


async def _give_up(update: Update, context: ContextTypes.DEFAULT_TYPE, refused: UploadRefused,
                   file_name: str | None = None) -> int:
    """Refuse the file: say why, in the admin's language; log why, in Korean."""
    pending = context.user_data.pop("upload", None)
    file_name = file_name or (pending.file_name if pending else "")
    await _audit(update, context, "upload_refused",
                 f"{file_name}: {to_plain_text(_reason(refused, 'ko'))}")
    language = _language(update, context)
    await update.effective_message.reply_html(
        render("upload_refused", language, file_name=file_name,
               reason=_reason(refused, language)))
    return ConversationHandler.END


async def _finish(update: Update, context: ContextTypes.DEFAULT_TYPE,
                  pending: PendingUpload) -> None:
    """Write the source and the document, reload, and report; undo when the reload refuses."""
    context.user_data.pop("upload", None)
    services = services_of(context)
    message = update.effective_message
    admin_id = update.effective_user.id
    root = services.settings.knowledge_dir
    policy_dir = root / "policy"
    sources_path = root / "sources.yaml"
    lock = context.application.bot_data.setdefault("upload_lock", asyncio.Lock())
    async with lock:
        knowledge = services.index.knowledge
        version_before = services.index.version
        try:
            target = policy_path(policy_dir, pending.slug)
            if target.exists() and not pending.overwrite:
                target = free_path(policy_dir, pending.slug)
        except UploadRefused as refused:
            await _give_up(update, context, refused, pending.file_name)
            return
        assert pending.date is not None and pending.source is not None
        assert pending.category is not None
        source_id = new_source_id(pending.date,
                                  set(knowledge.sources) | source_ids_on_disk(sources_path))
        title = document_title(pending.converted, pending.file_name, pending.caption_title)
        publisher = pending.publisher or DEFAULT_PUBLISHER
        today = dt.datetime.now(KST).date()
        note = f"uploaded by admin {admin_id} on {today:%Y-%m-%d} from {pending.file_name}"
        markdown = policy_markdown(title, source_id, pending.date, pending.category,
                                   pending.converted.sections, note)
        entry = source_entry(source_id, pending.source, publisher, pending.date, note)
        # The converted file is checked as the loader will check it before anything is written.
        source = Source(source_id, pending.source, publisher, pending.date)
        try:
            split_passages(target, markdown, {**knowledge.sources, source_id: source},
                           knowledge.categories)
        except KnowledgeError as exc:
            await _give_up(update, context, UploadRefused("not_valid", error=str(exc)),
                           pending.file_name)
            return
        try:
            written = write_upload(sources_path, entry, target, markdown)
        except OSError as exc:
            log.exception("upload %s not written", pending.file_name)
            await _give_up(update, context, UploadRefused("not_written", error=exc.strerror),
                           pending.file_name)
            return
        result = await services.reloader.reload(by=admin_id)
        if isinstance(result, ReloadFailed):
            written.undo()
            await _audit(update, context, "upload_failed",
                         f"{pending.file_name} -> {target.name}: {'; '.join(result.errors)}")
            await message.reply_html(render("upload_failed", _language(update, context),
                                            file_name=pending.file_name, failure=result))
            return
    passages = [p for p in services.index.knowledge.passages
                if p.path.resolve() == target.resolve()]
    category = services.index.knowledge.categories.get(pending.category)
    await _audit(update, context, "upload_done",
                 f"{pending.file_name} -> policy/{target.name}, source {source_id}, "
                 f"{len(passages)} passages, version {services.index.version}")
    language = _language(update, context)
    await message.reply_html(render(
        "upload_done", language, file_name=pending.file_name, name=target.name, title=title,
        passages=len(passages), source_id=source_id, source=source,
        category=((category.en if language == "en" else category.ko) if category
                  else pending.category), old_version=version_before,
        new_version=services.index.version, overwritten=written.policy_before is not None))


def handlers() -> list[BaseHandler]:
    """The upload conversation: before the question handlers, private chats only."""
    private_document = (filters.Document.ALL & filters.ChatType.PRIVATE
                        & filters.UpdateType.MESSAGE)
    private_text = (filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE
                    & filters.UpdateType.MESSAGE)
    buttons = CallbackQueryHandler(got_button, pattern=pattern("up", WORD, "[co]", KEY))
    with warnings.catch_warnings():
        # The topic and overwrite buttons belong to the conversation of the admin and chat,
        # not to one message; each carries the upload's token instead.
        warnings.filterwarnings("ignore", message=".*per_message=False.*",
                                category=PTBUserWarning)
        conversation = ConversationHandler(
            entry_points=[MessageHandler(private_document, received)],
            states={
                SOURCE: [MessageHandler(private_text, got_source)],
                DATE: [MessageHandler(private_text, got_date)],
                CATEGORY: [buttons],
                OVERWRITE: [buttons],
                ConversationHandler.TIMEOUT: [TypeHandler(Update, timed_out)],
            },
            fallbacks=[CommandHandler("cancel", cancel),
                       MessageHandler(private_document, busy)],
            per_chat=True, per_user=True, conversation_timeout=TIMEOUT_SECONDS,
            name="upload",
        )
    return [conversation, CallbackQueryHandler(stale_button, pattern=r"^up:")]
