"""How updates come in: polling's getUpdates answers and webhook requests, checked.

An update python-telegram-bot cannot decode (a shape it does not know, a field of the wrong
type) made the whole getUpdates answer fail: the offset never moved past it, so every update
behind it was fetched and logged again fifty times a second. Here such an update is dropped
once with one log line, and the others are handled.

python-telegram-bot's own webhook server reads a whole body (up to 100 MB) before it checks
the secret header, answers invalid JSON with a 500 (Telegram then sends it again and again),
and cannot be given a size cap. Here a request without Telegram's secret is refused from its
headers, a body over MAX_BODY_BYTES is refused from its declared length (or as soon as it
grows past it), invalid JSON gets 400, and an update the library cannot decode is dropped
with one log line and a 200, so that Telegram does not deliver it again.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
from http import HTTPStatus
from typing import Any

import tornado.web
from telegram import Update
from telegram.ext import Application
from telegram.request import HTTPXRequest, RequestData
from tornado.httpserver import HTTPServer

from bot.settings import Settings

log = logging.getLogger(__name__)

# Telegram's updates are a few kilobytes (a 4096-character message with its entities); a
# megabyte leaves room for any update and refuses what is no update at all.
MAX_BODY_BYTES = 1024 * 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class CheckedUpdatesRequest(HTTPXRequest):
    """The request getUpdates goes through: an answer the library could not decode is
    mended when it is fetched again.

    Decoding every update here as well would cost about 0.1 ms per update (a tenth of the
    bot's own processing, bench/README.md), so the common path only notes the offset: the
    library asking again for an offset whose answer held updates means it could not decode
    that answer, and only then is each update checked.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_offset: object = None
        self._last_count = 0

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        status, payload = await super().do_request(url, method, request_data, *args, **kwargs)
        if status != HTTPStatus.OK or not url.endswith("/getUpdates"):
            return status, payload
        offset = request_data.parameters.get("offset") if request_data else None
        again = offset == self._last_offset and self._last_count > 0
        try:
            answer = json.loads(payload)
            updates = answer["result"]
            self._last_offset, self._last_count = offset, len(updates)
        except (ValueError, KeyError, TypeError):
            return status, payload  # not an answer to mend; the library reports it
        if not again:
            return status, payload
        mended = [_decodable(update) for update in updates]
        if mended == updates:
            return status, payload
        answer["result"] = mended
        return status, json.dumps(answer).encode()


class ParseFailureFilter(logging.Filter):
    """Keeps python-telegram-bot's report of an undecodable getUpdates answer out of the log:
    it dumps every pending user message (personal data) at CRITICAL, while the answer is
    mended on the next fetch and the dropped update gets its own line (see above)."""

    REPORTS = ("Error while parsing updates!",
               "Something went wrong processing the data received from Telegram")

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(self.REPORTS))


def quiet_parse_failures() -> None:
    for name in ("telegram.ext.ExtBot", "telegram.Bot", "telegram.ext.Updater"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ParseFailureFilter) for f in logger.filters):
            logger.addFilter(ParseFailureFilter())


def _decodable(update: object) -> object:
    """The update, or in its place an empty one with its id (so that the offset moves past
    it and Telegram forgets it) when the library cannot decode it."""
    try:
        Update.de_json(update, None)  # type: ignore[arg-type]
        return update
    except Exception as exc:
        update_id = update.get("update_id") if isinstance(update, dict) else None
        log.warning("update %s cannot be decoded (%s: %s); dropped", update_id,
                    type(exc).__name__, str(exc)[:200])
        return {"update_id": update_id}


@tornado.web.stream_request_body
class UpdateReceiver(tornado.web.RequestHandler):
    """POST /<path>: one update from Telegram."""

    SUPPORTED_METHODS = ("POST",)  # type: ignore[assignment]

    def initialize(self, bot_application: Application, secret: str) -> None:
        self.bot_application = bot_application
        self.secret = secret
        self.chunks: list[bytes] = []
        self.size = 0

    def prepare(self) -> None:
        """Runs on the headers alone, before any of the body is read."""
        given = self.request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            log.warning("webhook request from %s without the right secret refused",
                        self.request.remote_ip)
            raise tornado.web.HTTPError(HTTPStatus.FORBIDDEN)
        declared = self.request.headers.get("Content-Length", "0")
        if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
            raise tornado.web.HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        self.request.connection.set_max_body_size(MAX_BODY_BYTES)

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > MAX_BODY_BYTES:  # a chunked body that keeps growing
            raise tornado.web.HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        self.chunks.append(chunk)

    async def post(self) -> None:
        try:
            data = json.loads(b"".join(self.chunks))
        except ValueError:
            raise tornado.web.HTTPError(HTTPStatus.BAD_REQUEST, reason="invalid JSON") from None
        if not isinstance(data, dict):
            raise tornado.web.HTTPError(HTTPStatus.BAD_REQUEST, reason="not an update")
        bot = self.bot_application.bot
        try:
            update = Update.de_json(data, bot)
        except Exception as exc:  # the library's decoding of a shape it did not expect
            log.warning("update %s cannot be decoded (%s: %s); dropped",
                        data.get("update_id"), type(exc).__name__, str(exc)[:200])
            return  # 200: Telegram must not send it again
        bot.insert_callback_data(update)
        await self.bot_application.update_queue.put(update)

    def log_exception(self, *args: object) -> None:
        pass  # refusals are logged above, once; tornado would add a traceback per request


async def serve_webhook(application: Application, settings: Settings) -> None:
    """Run the application on a webhook until SIGINT or SIGTERM, as run_webhook would."""
    assert settings.webhook_url is not None and settings.webhook_secret is not None
    secret = settings.webhook_secret.get_secret_value()
    path = settings.webhook_url.rstrip("/").rsplit("/", 1)[-1] or "telegram"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await application.initialize()
    try:
        if application.post_init:
            await application.post_init(application)
        await application.start()
        routes = tornado.web.Application([
            (rf"/{path}/?", UpdateReceiver, {"bot_application": application, "secret": secret})])
        server = HTTPServer(routes, max_body_size=MAX_BODY_BYTES)
        server.listen(settings.webhook_port, settings.webhook_listen)
        # Listening first: Telegram may call as soon as it knows the address.
        await application.bot.set_webhook(settings.webhook_url, secret_token=secret,
                                          allowed_updates=Update.ALL_TYPES)
        log.info("webhook listening on %s:%s/%s", settings.webhook_listen,
                 settings.webhook_port, path)
        await stop.wait()
        server.stop()
        await application.stop()
        if application.post_stop:
            await application.post_stop(application)
    finally:
        await application.shutdown()
        if application.post_shutdown:
            await application.post_shutdown(application)
