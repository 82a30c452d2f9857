"""BotApiStandIn: a loopback Telegram Bot API server for end-to-end tests of a bot.

One class, made of one mixin per concern, all reading and changing the same users, chats and
queues: the test side (people.py: users and what they do; inspection.py: faults and what was
sent), the bookkeeping of updates, messages and files (chats.py), Telegram's checks of a call
(checks.py), the Bot API methods (methods.py: the bot's own; messages.py: on messages and
chats), and the limits, error texts and state records they share (state.py). This module, a
little over 400 lines, holds what ties them: the state set up in one __init__, starting and
stopping, the HTTP handlers and dispatch, and webhook delivery.

The server runs on tornado (already present through python-telegram-bot's ``webhooks`` extra)
inside the caller's asyncio loop, so a test can drive users, the bot and the "Telegram" side
from one coroutine without threads.  State changes are plain synchronous code on that loop,
which is why no locks are needed anywhere.

HTTP side: ``/bot<token>/<method>`` answers like api.telegram.org (method names are
case-insensitive, parameters may come as query string, JSON, urlencoded or multipart form),
``/file/bot<token>/<file_path>`` serves stored files, ``/_standin/*`` is a small control API for
benchmarks (see ``__main__``).

Test side: plain methods (``user``, ``group``, ``send_text``, ``press`` ...) that create updates
and inspection helpers (``messages_to``, ``wait_for_message``, ``rejections`` ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import httpx
import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.web

from .chats import Chats
from .checks import Checks
from .inspection import Inspection
from .limits import Limiter, RateLimit
from .messages import MessageMethods
from .methods import BotMethods
from .people import People
from .records import (
    CallbackAnswer,
    ChatAction,
    Rejection,
    RequestRecord,
    StoredFile,
)
from .state import (
    _MEDIA_FOLDERS,
    _NO_RESPONSE,
    _TOKEN_RE,
    DEFAULT_GLOBAL_LIMIT,
    DEFAULT_GROUP_CHAT_LIMIT,
    DEFAULT_PRIVATE_CHAT_LIMIT,
    DEFAULT_TOKEN,
    DEFAULT_UPDATE_TYPES,
    JSON,
    SENDING_METHODS,
    UPLOAD_LIMIT,
    ApiError,
    _Chat,
    _Described,
    _Fault,
    _Hold,
    _Params,
    _Poller,
    _Query,
    _UserState,
)

_LOG = logging.getLogger(__name__)


class _ApiHandler(tornado.web.RequestHandler):
    """Routes /bot<token>/<method> into the stand-in."""

    standin: BotApiStandIn
    poller: _Poller | None

    def initialize(self, standin: BotApiStandIn) -> None:
        self.standin = standin
        self.poller = None
        self.closed = False

    async def get(self, token: str, method: str) -> None:
        answer = await self.standin._dispatch(self, token, method)
        if answer is None or self.request.connection is None:
            return
        status, body = answer
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(body)

    post = get

    def on_connection_close(self) -> None:
        self.closed = True
        self.standin._changed()
        # A cancelled long poll (PTB stopping) must not count as a competing getUpdates.
        if self.poller is not None:
            self.poller.closed = True
            self.poller.wake("closed")


class _FileHandler(tornado.web.RequestHandler):
    """Serves /file/bot<token>/<file_path> like api.telegram.org does."""

    standin: BotApiStandIn

    def initialize(self, standin: BotApiStandIn) -> None:
        self.standin = standin

    def get(self, token: str, path: str) -> None:
        stored = self.standin._files_by_path.get(path) if token == self.standin.token else None
        self.standin._record("file", 200 if stored else 404, {"file_path": path}, time.monotonic())
        if stored is None:
            self.set_status(404)
            self.set_header("Content-Type", "application/json")
            self.finish(b'{"ok":false,"error_code":404,"description":"Not Found"}')
            return
        self.set_header("Content-Type", stored.mime_type or "application/octet-stream")
        self.finish(stored.data)


class _ControlHandler(tornado.web.RequestHandler):
    """Tiny control API for out-of-process use: GET stats, POST inject."""

    standin: BotApiStandIn

    def initialize(self, standin: BotApiStandIn) -> None:
        self.standin = standin

    def get(self, action: str) -> None:
        if action != "stats":
            raise tornado.web.HTTPError(404)
        self._reply(self.standin.stats())

    def post(self, action: str) -> None:
        if action != "inject":
            raise tornado.web.HTTPError(404)
        try:
            body = json.loads(self.request.body or b"{}")
            count = int(body.get("count", 1))
            users = max(1, int(body.get("users", 1)))
            first_user = int(body.get("first_user_id", 1_000_000))
            text = str(body.get("text", "hello"))
        except (ValueError, TypeError, AttributeError) as exc:
            raise tornado.web.HTTPError(400, reason=str(exc)) from None
        result = self.standin.inject_texts(count, users=users, first_user_id=first_user, text=text)
        self._reply(result)

    def _reply(self, data: JSON) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data).encode())


class BotApiStandIn(People, Inspection, Chats, Checks, BotMethods, MessageMethods):
    """A Telegram Bot API stand-in for one bot token, served on 127.0.0.1.

    Rate limits: ``global_limit`` applies to all counted calls of the bot, ``private_chat_limit``
    per private chat and ``group_chat_limit`` per group; pass ``None`` to disable one.  Counted
    methods are ``rate_limited_methods`` (default: the sending methods, see SENDING_METHODS).
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_first_name: str = "Stand-in Bot",
        bot_username: str = "standin_bot",
        global_limit: RateLimit | None = DEFAULT_GLOBAL_LIMIT,
        private_chat_limit: RateLimit | None = DEFAULT_PRIVATE_CHAT_LIMIT,
        group_chat_limit: RateLimit | None = DEFAULT_GROUP_CHAT_LIMIT,
        rate_limited_methods: Iterable[str] = SENDING_METHODS,
        strict_html_ampersand: bool = True,
        group_privacy: bool = False,
        webhook_retry_delay: float = 0.1,
        conflict_grace: float = 0.25,
        log_limit: int = 100_000,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        match = _TOKEN_RE.match(token)
        if match is None or "/" in token:
            raise ValueError(f"token must look like '<digits>:<text>', got {token!r}")
        self.token = token
        self.bot_id = int(match.group(1))
        self.bot_first_name = bot_first_name
        self.bot_username = bot_username
        self.global_limit = global_limit
        self.private_chat_limit = private_chat_limit
        self.group_chat_limit = group_chat_limit
        self.rate_limited_methods = frozenset(rate_limited_methods)
        self.strict_html_ampersand = strict_html_ampersand
        self.group_privacy = group_privacy
        self.webhook_retry_delay = webhook_retry_delay
        self.conflict_grace = conflict_grace
        self.host = host
        self._port = port

        self._users: dict[int, _UserState] = {}
        self._chats: dict[int, _Chat] = {}
        self._updates: deque[JSON] = deque()
        self._update_ids = itertools.count(1)
        self._last_enqueued_id: int | None = None
        self._allowed: frozenset[str] = DEFAULT_UPDATE_TYPES
        self._poller: _Poller | None = None
        self._webhook_url = ""
        self._webhook_secret: str | None = None
        self._webhook_max_connections = 40
        self._webhook_allowed: list[str] | None = None
        self._webhook_error: tuple[int, str] | None = None
        self._webhook_wakeup = asyncio.Event()
        self._files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._file_ids = itertools.count(1)
        self._queries: dict[str, _Query] = {}
        self._query_ids = itertools.count(4_000_000_000_000_000_001)
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._global_limiter: Limiter | None = global_limit.make() if global_limit else None
        self._chat_limiters: dict[int, Limiter] = {}
        self._change: asyncio.Future[None] | None = None
        # method (lower case) -> the injected fault and how many more calls it answers
        self._faults: dict[str, _Fault] = {}
        # method (lower case) -> calls held in flight until released
        self._holds: dict[str, _Hold] = {}

        self.requests: deque[RequestRecord] = deque(maxlen=log_limit)
        self.rejections: list[Rejection] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.chat_actions: list[ChatAction] = []
        self.too_many_requests = 0
        self._method_counts: Counter[str] = Counter()
        self._error_counts: Counter[int] = Counter()
        self._updates_enqueued = 0
        self._updates_filtered = 0
        self._webhook_delivered = 0
        self._bot_messages = 0
        self._started_at = 0.0

        self._server: tornado.httpserver.HTTPServer | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._stopping = False

        self._methods: dict[str, tuple[str, Callable[..., Any]]] = {}
        for name, impl in {
            "getMe": self._m_get_me,
            "getUpdates": self._m_get_updates,
            "setWebhook": self._m_set_webhook,
            "deleteWebhook": self._m_delete_webhook,
            "getWebhookInfo": self._m_get_webhook_info,
            "setMyCommands": self._m_set_my_commands,
            "getMyCommands": self._m_get_my_commands,
            "deleteMyCommands": self._m_delete_my_commands,
            "sendMessage": self._m_send_message,
            "editMessageText": self._m_edit_message_text,
            "editMessageReplyMarkup": self._m_edit_message_reply_markup,
            "answerCallbackQuery": self._m_answer_callback_query,
            "sendChatAction": self._m_send_chat_action,
            "deleteMessage": self._m_delete_message,
            "getFile": self._m_get_file,
            "getChat": self._m_get_chat,
            "getChatMember": self._m_get_chat_member,
            "close": self._m_true,
            "logOut": self._m_true,
        }.items():
            self._methods[name.lower()] = (name, impl)
        for kind in _MEDIA_FOLDERS:
            name = "send" + kind.capitalize()
            self._methods[name.lower()] = (name, self._media_sender(kind, name))

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("stand-in is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``.

        Give PTB ``f"{base_url}/bot"`` as base_url and ``f"{base_url}/file/bot"`` as
        base_file_url.
        """
        return f"http://{self.host}:{self.port}"

    async def start(self) -> BotApiStandIn:
        if self._server is not None:
            return self
        app = tornado.web.Application(
            [
                (r"/bot([^/]*)/([^/]*)", _ApiHandler, {"standin": self}),
                (r"/file/bot([^/]*)/(.+)", _FileHandler, {"standin": self}),
                (r"/_standin/(\w+)", _ControlHandler, {"standin": self}),
            ],
            log_function=lambda handler: None,  # keep test output quiet
        )
        sockets = tornado.netutil.bind_sockets(self._port, self.host)
        self._port = sockets[0].getsockname()[1]
        server = tornado.httpserver.HTTPServer(app, max_body_size=UPLOAD_LIMIT + 1024 * 1024)
        server.add_sockets(sockets)
        self._server = server
        self._stopping = False
        self._started_at = time.monotonic()
        # trust_env=False: a proxy from the environment must never see loopback webhook traffic.
        self._http = httpx.AsyncClient(trust_env=False, timeout=10.0)
        self._webhook_task = asyncio.create_task(self._webhook_worker(), name="standin-webhook")
        return self

    async def stop(self) -> None:
        if self._server is None:
            return
        self._stopping = True
        self.release()
        if self._poller is not None:
            self._poller.wake("stopped")
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        self._server.stop()
        await self._server.close_all_connections()
        self._server = None

    async def __aenter__(self) -> BotApiStandIn:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ internals: HTTP

    async def _dispatch(
        self, handler: _ApiHandler, token: str, method_raw: str
    ) -> tuple[int, bytes] | None:
        started = time.monotonic()
        entry = self._methods.get(method_raw.lower())
        method = entry[0] if entry else method_raw
        params: JSON = {}
        try:
            if not _TOKEN_RE.match(token):
                raise ApiError(404, "Not Found")
            if token != self.token:
                raise ApiError(401, "Unauthorized")
            if entry is None:
                raise ApiError(404, "Not Found")
            params, files = self._parse_request(handler.request)
            hold = self._holds.get(method.lower())
            if hold is not None and not hold.delivered:
                await self._wait_for_release(hold, handler)
                if handler.closed:
                    return None  # the client gave up: the call never reached "Telegram"
            self._check_fault(method)
            result = entry[1](_Params(params), files, handler)
            if inspect.isawaitable(result):
                result = await result
            if result is _NO_RESPONSE:
                return None
            if isinstance(result, _Described):
                body: JSON = {
                    "ok": True,
                    "result": result.result,
                    "description": result.description,
                }
            else:
                body = {"ok": True, "result": result}
            status = 200
        except ApiError as exc:
            status = exc.code
            body = exc.body()
            self._reject(method, exc, params, started)
        except Exception as exc:  # a stand-in bug must be loud, not a hung test
            _LOG.exception("stand-in failed on %s", method)
            error = ApiError(500, f"Internal Server Error: stand-in bug: {exc!r}")
            status = 500
            body = error.body()
            self._reject(method, error, params, started)
        self._record(method, status, params, started)
        hold = self._holds.get(method.lower())
        if hold is not None and hold.delivered and status == 200:
            await self._wait_for_release(hold, handler)
        return status, json.dumps(body, ensure_ascii=False).encode()

    @staticmethod
    def _parse_request(
        request: tornado.httputil.HTTPServerRequest,
    ) -> tuple[JSON, dict[str, tornado.httputil.HTTPFile]]:
        params: JSON = {}
        for key, values in request.query_arguments.items():
            params[key] = values[-1].decode("utf-8", "replace")
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type == "application/json":
            if request.body:
                try:
                    data = json.loads(request.body)
                except ValueError:
                    raise ApiError(400, "Bad Request: can't parse JSON encoded request") from None
                if not isinstance(data, dict):
                    raise ApiError(400, "Bad Request: JSON object expected as request body")
                params.update(data)
        else:
            for key, values in request.body_arguments.items():
                params[key] = values[-1].decode("utf-8", "replace")
        files = {key: values[0] for key, values in request.files.items() if values}
        return params, files

    def _record(self, method: str, status: int, params: JSON, started: float) -> None:
        self.requests.append(RequestRecord(method, started, status, params))
        self._method_counts[method] += 1
        if status >= 400:
            self._error_counts[status] += 1
        self._changed()

    def _reject(self, method: str, error: ApiError, params: JSON, at: float) -> None:
        chat_id: int | str | None = params.get("chat_id")
        if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
            chat_id = int(chat_id)
        retry = (error.parameters or {}).get("retry_after")
        self.rejections.append(
            Rejection(method, error.code, error.description, chat_id, params, at, retry)
        )

    # ------------------------------------------------------------------ webhook delivery

    async def _webhook_worker(self) -> None:
        """Deliver queued updates to the webhook one at a time, in order, retrying on failure.

        Sequential delivery keeps update order trivially correct; it still moves several
        hundred updates per second over loopback, which is all a test needs.
        """
        delay = self.webhook_retry_delay
        while True:
            if not self._webhook_url or not self._updates:
                self._webhook_wakeup.clear()
                await self._webhook_wakeup.wait()
                continue
            update = self._updates[0]
            headers = {"Content-Type": "application/json"}
            if self._webhook_secret:
                headers["X-Telegram-Bot-Api-Secret-Token"] = self._webhook_secret
            body = json.dumps(update, ensure_ascii=False).encode()
            error: str | None = None
            assert self._http is not None
            try:
                response = await self._http.post(self._webhook_url, content=body, headers=headers)
                if not 200 <= response.status_code < 300:
                    error = (
                        f"Wrong response from the webhook: {response.status_code} "
                        f"{response.reason_phrase}"
                    )
            except httpx.ConnectError:
                error = "Connection refused"
            except httpx.TimeoutException:
                error = "Read timeout expired"
            except httpx.HTTPError as exc:
                error = f"Webhook delivery failed: {exc!r}"
            if error is None:
                if self._updates and self._updates[0] is update:
                    self._updates.popleft()
                self._webhook_delivered += 1
                delay = self.webhook_retry_delay
                self._changed()
            else:
                self._webhook_error = (int(time.time()), error)
                self._changed()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
