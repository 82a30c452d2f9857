"""Build and run the Telegram application: one place that wires settings, engine and handlers."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import traceback
from types import TracebackType
from typing import TextIO

from telegram import Update
from telegram.error import InvalidToken
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    TypeHandler,
)
from telegram.request import HTTPXRequest

from bot.answering import models_of
from bot.delivery.inbox import (
    InboxApplication,
    InboxProcessor,
    InboxQueue,
    InboxRequest,
    NotedBeforeConfirmed,
)
from bot.delivery.intake import CheckedUpdatesRequest, quiet_parse_failures, serve_webhook
from bot.delivery.posting import FollowUpPoster
from bot.delivery.sending import RetryingRateLimiter
from bot.eligibility import conversation as eligibility_check
from bot.handlers import admin, guards, learning, menu, questions, secretariat, uploads
from bot.knowledge import load_index
from bot.replies import KST
from bot.services import Services
from bot.settings import Settings
from bot.storage.database import Database, upgrade_schema
from bot.storage.persistence import DatabasePersistence

log = logging.getLogger(__name__)

TOKEN_IN_TEXT = re.compile(r"\d{3,}:[A-Za-z0-9_-]{20,}")
SPOOL_REPLAY_SECONDS = 30
# How often each process looks for updates a stopped process left unfinished (and writes the
# inbox spool when the database is back).
INBOX_RECOVERY_SECONDS = 5
# Telegram allows 30 messages a second; a little under, as its window and ours are not in step
# (at 30 the stand-in's sliding window answered one 429 per burst).
TELEGRAM_MESSAGES_PER_SECOND = 28
# Connections to the Bot API for the bot's calls (getUpdates has its own); messages to chats
# take all but four, so that a paced message never waits for one (bot/delivery/sending.py).
BOT_CONNECTIONS = 16


class RedactingFormatter(logging.Formatter):
    """Blanks out bot tokens anywhere in a log line, tracebacks included: httpx logs request
    URLs, and Bot API URLs carry the token."""

    def format(self, record: logging.LogRecord) -> str:
        return TOKEN_IN_TEXT.sub("<token>", super().format(record))


def _print_redacted(kind: type[BaseException], error: BaseException,
                    trace: TracebackType | None) -> None:
    """Python's last word on an uncaught error, with any token blanked out like the log."""
    text = "".join(traceback.format_exception(kind, error, trace))
    sys.stderr.write(TOKEN_IN_TEXT.sub("<token>", text))


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    sys.excepthook = _print_redacted
    quiet_parse_failures()
    # One line per Bot API request is noise unless debugging; warnings still show. Set both
    # ways, so that configuring again (DEBUG after INFO) is not left quieter than asked.
    chatty = logging.WARNING if logging.getLevelName(level) != logging.DEBUG else logging.NOTSET
    logging.getLogger("httpx").setLevel(chatty)
    logging.getLogger("apscheduler").setLevel(chatty)


async def _start_services(application: Application) -> None:
    services: Services = application.bot_data["services"]
    await asyncio.to_thread(upgrade_schema, services.settings.database_url)
    await services.database.replay_spool()
    await services.inbox.start()
    # Before the first getUpdates or webhook call: what a stopped process left is handled first.
    await _recover_updates(application, patient=True)
    if services.poster is not None:
        services.poster.start(application.bot)
        services.database.on_replayed = lambda _: services.poster.poke()
    if application.job_queue is not None:
        application.job_queue.run_repeating(_recover_inbox, INBOX_RECOVERY_SECONDS,
                                            first=INBOX_RECOVERY_SECONDS, name="inbox")
        application.job_queue.run_repeating(_replay_spool, SPOOL_REPLAY_SECONDS,
                                            first=SPOOL_REPLAY_SECONDS)
        digest_at = services.settings.digest_time.replace(tzinfo=KST)
        application.job_queue.run_daily(secretariat.send_digest, digest_at, name="digest")
        application.job_queue.run_repeating(guards.forget_old_presses, 86_400, first=60,
                                            name="forget-presses")
        every = services.settings.knowledge_sync_seconds
        application.job_queue.run_repeating(_sync_knowledge, every, first=every,
                                            name="knowledge-sync")
    await services.reloader.sync()
    # The "/" menu: in the background, so that a slow or refusing Telegram never holds the
    # start (a failure is logged).
    services.background.append(asyncio.get_running_loop().create_task(
        menu.register_commands(application.bot, services.settings), name="command-menu"))
    if services.settings.knowledge_watch:
        services.background.append(asyncio.get_running_loop().create_task(
            _watch_knowledge(services), name="knowledge-watch"))
    log.info("serving knowledge version %s (%d documents)", services.index.version,
             len(services.index))


async def _recover_updates(application: Application, patient: bool = False) -> None:
    services: Services = application.bot_data["services"]
    for payload in await services.inbox.recover(patient):
        update = Update.de_json(json.loads(payload), application.bot)
        application.update_queue.put_nowait(update)  # noted already


async def _recover_inbox(context: ContextTypes.DEFAULT_TYPE) -> None:
    await _recover_updates(context.application)


async def _sync_knowledge(context: ContextTypes.DEFAULT_TYPE) -> None:
    await context.bot_data["services"].reloader.sync()


async def _watch_knowledge(services: Services) -> None:
    """KNOWLEDGE_WATCH=1: reload whenever files under the knowledge folder change."""
    from watchfiles import awatch

    async for changes in awatch(services.settings.knowledge_dir):
        log.info("knowledge files changed (%d); reloading", len(changes))
        await services.reloader.reload()


async def _replay_spool(context: ContextTypes.DEFAULT_TYPE) -> None:
    await context.bot_data["services"].database.replay_spool()


async def _stop_services(application: Application) -> None:
    services: Services = application.bot_data["services"]
    for task in services.background:
        task.cancel()
    if services.poster is not None:
        await services.poster.stop()
    await services.inbox.close()
    await services.database.close()
    services.answerer.shutdown()


def build_application(settings: Settings, services: Services | None = None) -> Application:
    """The python-telegram-bot Application with every handler registered."""
    if services is None:
        index = load_index(settings.knowledge_dir, settings.analyzer, settings.cache_dir)
        models_of(index)  # the decision's fitted models: refuse to start without them
        services = Services(settings, index, Database(settings.database_url, settings.spool_path))
    base = settings.telegram_base_url.rstrip("/")
    # Every update is noted in the inbox before Telegram counts it delivered
    # (bot/delivery/inbox.py).
    inbox = services.inbox
    queue = InboxQueue(inbox)
    processor = InboxProcessor(inbox, max_concurrent_updates=64)
    builder = (
        ApplicationBuilder()
        .application_class(InboxApplication)
        .token(settings.token())
        .base_url(f"{base}/bot")
        .base_file_url(f"{base}/file/bot")
        .update_queue(queue)
        # A small pool: httpcore scans every pooled connection per request.
        .request(InboxRequest(HTTPXRequest(connection_pool_size=BOT_CONNECTIONS, read_timeout=15,
                                           write_timeout=15), inbox))
        .get_updates_request(NotedBeforeConfirmed(
            CheckedUpdatesRequest(connection_pool_size=2, read_timeout=40), queue))
        .concurrent_updates(processor)
        .post_init(_start_services)
        .post_shutdown(_stop_services)
        # Conversations (the eligibility check) and user_data survive a restart: written to
        # the database every few seconds when changed, and at shutdown.
        .persistence(DatabasePersistence(services.database,
                                         settings.persistence_interval_seconds))
    )
    # Keeps bursts inside Telegram's limits, retries after a 429's retry_after, and retries
    # transient failures (5xx, network, timeouts) for SEND_RETRY_SECONDS. One message every
    # 1/30 s rather than 30 at once each second: a burst of 30 met Telegram's sliding window
    # with 429s, and held that many replies in flight at once, each of which a crash leaves
    # unknown (sent or not; bot/delivery/inbox.py).
    limiter = RetryingRateLimiter(settings.send_retry_seconds, throttle=settings.rate_limiter,
                                  per_second=TELEGRAM_MESSAGES_PER_SECOND,
                                  in_flight=BOT_CONNECTIONS - 4)
    # Several processes of one bot (one database) share that rate: the inbox counts them.
    inbox.on_processes = limiter.share
    builder = builder.rate_limiter(limiter)
    application = builder.build()
    processor.application = application
    # Sends are retried while the application runs; once it stops, a failing send fails at
    # once instead of holding the stop for the rest of its window.
    limiter.keep_trying = lambda: application.running
    if services.poster is None:
        services.poster = FollowUpPoster(services)
    application.bot_data["services"] = services
    # The secretariat's desk first: its group replies and commands are not questions; then
    # the eligibility check, whose /check, /cancel and buttons are not questions either.
    application.add_handler(TypeHandler(Update, guards.check_update), group=-1)
    # Documents in private chats: an admin's is an upload, anyone else's is refused as before
    # (the upload conversation hands those to questions.not_text).
    application.add_handlers([*admin.handlers(), *learning.handlers(), *uploads.handlers(),
                              *secretariat.handlers(settings),
                              *eligibility_check.handlers(), *menu.handlers(),
                              *questions.handlers(settings),
                              CallbackQueryHandler(guards.unknown_button)])
    application.add_error_handler(questions.on_error)
    return application


def run(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM: long polling, or a webhook when WEBHOOK_URL is set."""
    configure_logging(settings.log_level)
    application = build_application(settings)
    if settings.webhook_url and settings.webhook_secret is None:
        raise SystemExit("WEBHOOK_SECRET is not set; Telegram's secret-token header "
                         "must be checked in webhook mode (see .env.example)")
    try:
        if settings.webhook_url:
            asyncio.run(serve_webhook(application, settings))
        else:
            application.run_polling(allowed_updates=Update.ALL_TYPES)
    except InvalidToken:
        # Its message quotes the token: never let it reach the terminal or a log collector.
        raise SystemExit("Telegram refused TELEGRAM_BOT_TOKEN (revoked or mistyped); copy "
                         "the current one from @BotFather (see .env.example)") from None
