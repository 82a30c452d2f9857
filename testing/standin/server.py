"""BotApiStandIn: a loopback Telegram Bot API server for end-to-end tests of a bot.

One class over 400 lines: every Bot API method reads and changes the same users, chats, queues.

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
import mimetypes
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.web

from .limits import Limiter, RateLimit, SlidingWindow, TokenBucket, retry_after_seconds
from .markup import EntityParseError, auto_entities, parse_text, trim_text, utf16_len
from .records import (
    BotMessage,
    CallbackAnswer,
    ChatAction,
    Group,
    Rejection,
    RequestRecord,
    StoredFile,
    User,
    UserMessage,
)

__all__ = ["DEFAULT_TOKEN", "ApiError", "BotApiStandIn"]

_LOG = logging.getLogger(__name__)

JSON = dict[str, Any]

DEFAULT_TOKEN = "123456789:STANDIN-aaaaBBBBccccDDDDeeeeFFFFggggHHHH"
_TOKEN_RE = re.compile(r"^(\d+):(\S+)$")

MESSAGE_LIMIT = 4096  # UTF-16 code units, after entity parsing
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64  # bytes of UTF-8
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # getFile refuses bigger files on the cloud Bot API
UPLOAD_LIMIT = 50 * 1024 * 1024

ALL_UPDATE_TYPES = frozenset(
    {
        "message", "edited_message", "channel_post", "edited_channel_post",
        "business_connection", "business_message", "edited_business_message",
        "deleted_business_messages", "message_reaction", "message_reaction_count",
        "inline_query", "chosen_inline_result", "callback_query", "shipping_query",
        "pre_checkout_query", "purchased_paid_media", "poll", "poll_answer", "my_chat_member",
        "chat_member", "chat_join_request", "chat_boost", "removed_chat_boost",
    }
)  # fmt: skip
# What Telegram sends when allowed_updates was never set or set to [].
DEFAULT_UPDATE_TYPES = ALL_UPDATE_TYPES - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}

# Telegram's documented flood limits: ~30 messages/s per bot, about one message per second in
# a private chat with short bursts tolerated, 20 messages per minute in a group.
DEFAULT_GLOBAL_LIMIT = SlidingWindow(30, 1.0)
DEFAULT_PRIVATE_CHAT_LIMIT = TokenBucket(rate=1.0, burst=10)
DEFAULT_GROUP_CHAT_LIMIT = SlidingWindow(20, 60.0)

# Methods that count against flood limits by default: everything that posts a new message.
# Edits and chat actions are left out because Telegram documents no limit for them and
# counting them would make callback-heavy bots fail in tests but not in production.
# BotCommandScope types (https://core.telegram.org/bots/api#botcommandscope).
COMMAND_SCOPES = frozenset({"default", "all_private_chats", "all_group_chats",
                            "all_chat_administrators", "chat", "chat_administrators",
                            "chat_member"})
SENDING_METHODS = frozenset(
    {
        "sendMessage", "sendDocument", "sendPhoto", "sendAudio", "sendVoice", "sendVideo",
        "sendAnimation", "sendSticker", "copyMessage", "forwardMessage",
    }
)  # fmt: skip

_CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
        "upload_document", "choose_sticker", "find_location", "record_video_note",
        "upload_video_note",
    }
)  # fmt: skip
_BUTTON_ACTIONS = (
    "url", "callback_data", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
)  # fmt: skip
_MEDIA_FOLDERS = {
    "document": "documents", "photo": "photos", "audio": "music", "voice": "voice",
    "video": "videos", "animation": "animations", "sticker": "stickers",
}  # fmt: skip

_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
_POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running"
)
_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)


class ApiError(Exception):
    """An error answer in Telegram's shape; raised inside method implementations."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        data: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            data["parameters"] = self.parameters
        return data


@dataclass(frozen=True)
class _Described:
    """A successful result that Telegram accompanies with a description (webhook methods)."""

    result: Any
    description: str


_NO_RESPONSE = object()  # the client went away; write nothing


class _Params:
    """Typed access to request parameters, coercing form strings the way the Bot API does."""

    __slots__ = ("data",)

    def __init__(self, data: JSON) -> None:
        self.data = data

    def raw(self, name: str) -> Any:
        return self.data.get(name)

    def get_str(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, (dict, list)):
            raise ApiError(400, f'Bad Request: field "{name}" must be of type String')
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def get_int(self, name: str, default: int | None = None) -> int | None:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise ApiError(400, f"Bad Request: invalid {name} specified") from None

    def get_float(self, name: str, default: float) -> float:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ApiError(400, f"Bad Request: invalid {name} specified") from None

    def get_bool(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ApiError(400, f"Bad Request: invalid {name} specified")

    def get_json(self, name: str) -> Any:
        value = self.data.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None
        return value


class _Poller:
    """One pending long-poll getUpdates; its future says why it woke up."""

    __slots__ = ("closed", "future")

    def __init__(self) -> None:
        self.future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.closed = False

    def wake(self, reason: str) -> None:
        if not self.future.done():
            self.future.set_result(reason)


class _UserState:
    __slots__ = ("blocked", "started", "user")

    def __init__(self, user: User, started: bool) -> None:
        self.user = user
        self.started = started
        self.blocked = False


class _Chat:
    """Everything known about one chat; message dicts are replaced, never mutated."""

    __slots__ = (
        "consumed", "first_unconsumed", "group", "id", "json", "messages", "next_message_id",
        "outgoing", "sources", "type", "user_id",
    )  # fmt: skip

    def __init__(self, chat_id: int, chat_type: str, chat_json: JSON) -> None:
        self.id = chat_id
        self.type = chat_type
        self.json = chat_json
        self.user_id: int | None = chat_id if chat_type == "private" else None
        self.group: Group | None = None
        self.next_message_id = 1
        self.messages: dict[int, JSON] = {}
        # (source text, parse_mode) of bot messages, so markup-only edits can be logged fully.
        self.sources: dict[int, tuple[str | None, str | None]] = {}
        self.outgoing: list[BotMessage] = []
        # wait_for_message hands out each outgoing entry once; the flags plus the index of the
        # first unconsumed entry keep that O(1) for the usual in-order waiting.
        self.consumed: list[bool] = []
        self.first_unconsumed = 0


@dataclass
class _Fault:
    code: int
    description: str
    parameters: JSON | None
    remaining: int | None


@dataclass
class _Hold:
    """Calls of one method held in flight until released (see BotApiStandIn.hold)."""

    delivered: bool
    released: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: list[_ApiHandler] = field(default_factory=list)


@dataclass
class _Query:
    user_id: int
    data: str | None
    answered: bool = False
    update: JSON | None = None  # the callback_query payload, to deliver it again


ChatRef = int | User | Group


def _chat_id_of(chat: ChatRef | UserMessage | BotMessage) -> int:
    if isinstance(chat, (User, Group)):
        return chat.id
    if isinstance(chat, (UserMessage, BotMessage)):
        return chat.chat_id
    return int(chat)


def _without_reply(message: JSON) -> JSON:
    # Telegram nests replied-to messages one level deep only.
    if "reply_to_message" not in message:
        return message
    return {k: v for k, v in message.items() if k != "reply_to_message"}


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


class BotApiStandIn:
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

    # ------------------------------------------------------------------ test side: setup

    def user(
        self,
        id: int,
        first_name: str,
        username: str | None = None,
        last_name: str | None = None,
        *,
        language_code: str | None = "en",
        started: bool = True,
    ) -> User:
        """Register a user (and their private chat with the bot).

        ``started=False`` models someone who never opened the bot: sending to them gives
        403 "Forbidden: bot can't initiate conversation with a user" until they write.
        """
        if id <= 0:
            raise ValueError("user ids are positive")
        user = User(id, first_name, username, last_name, language_code)
        state = self._users.get(id)
        if state is None:
            self._users[id] = _UserState(user, started)
        else:
            state.user = user
        chat_json: JSON = {"id": id, "first_name": first_name, "type": "private"}
        if last_name:
            chat_json["last_name"] = last_name
        if username:
            chat_json["username"] = username
        chat = self._chats.get(id)
        if chat is None:
            self._chats[id] = _Chat(id, "private", chat_json)
        else:
            chat.json = chat_json
        return user

    def group(
        self,
        id: int,
        title: str,
        members: Iterable[User | int] = (),
        *,
        admins: Iterable[User | int] = (),
        supergroup: bool | None = None,
        username: str | None = None,
    ) -> Group:
        """Register a group the bot is in; ids of -100... are supergroups unless told otherwise."""
        if id >= 0:
            raise ValueError("group ids are negative")
        if supergroup is None:
            supergroup = str(id).startswith("-100")
        admin_ids = {_chat_id_of(a) for a in admins}
        group = Group(
            id=id,
            title=title,
            type="supergroup" if supergroup else "group",
            members={_chat_id_of(m) for m in members} | admin_ids,
            admins=admin_ids,
            username=username,
        )
        chat = _Chat(id, group.type, group.to_json())
        chat.group = group
        self._chats[id] = chat
        return group

    def block(self, user: User | int) -> None:
        """The user blocks the bot: sends get 403, and a my_chat_member update is queued."""
        state = self._user_state(user)
        if not state.blocked:
            state.blocked = True
            self._my_chat_member(state.user, "member", "kicked")

    def unblock(self, user: User | int) -> None:
        state = self._user_state(user)
        if state.blocked:
            state.blocked = False
            self._my_chat_member(state.user, "kicked", "member")

    # ------------------------------------------------------------------ test side: user actions

    def send_text(
        self,
        user: User | int,
        text: str,
        chat: ChatRef | None = None,
        reply_to: UserMessage | BotMessage | int | None = None,
        *,
        entities: list[JSON] | None = None,
    ) -> UserMessage:
        """Queue a text message update; bot_command/mention/hashtag/url entities are automatic."""
        if not text:
            raise ValueError("Telegram clients cannot send empty text")
        if utf16_len(text) > MESSAGE_LIMIT:
            raise ValueError("a user cannot send more than 4096 UTF-16 code units either")
        fields: JSON = {"text": text}
        found = auto_entities(text) if entities is None else entities
        if found:
            fields["entities"] = found
        return self._user_message(user, chat, reply_to, "text", fields, None)

    def send_sticker(
        self,
        user: User | int,
        emoji: str = "👍",
        chat: ChatRef | None = None,
        *,
        reply_to: UserMessage | BotMessage | int | None = None,
    ) -> UserMessage:
        fake_webp = b"RIFF\x00\x00\x00\x00WEBPVP8 stand-in"
        stored = self._store_file("sticker", fake_webp, "image/webp", None)
        sticker = self._media_json("sticker", stored, {}) | {"emoji": emoji}
        return self._user_message(user, chat, reply_to, "sticker", {"sticker": sticker}, stored)

    def send_photo(
        self,
        user: User | int,
        data: bytes = b"\xff\xd8\xff\xe0stand-in-jpeg",
        caption: str | None = None,
        chat: ChatRef | None = None,
        *,
        width: int = 800,
        height: int = 600,
        reply_to: UserMessage | BotMessage | int | None = None,
    ) -> UserMessage:
        stored = self._store_file("photo", data, "image/jpeg", None)
        fields: JSON = {
            "photo": self._media_json("photo", stored, {"width": width, "height": height})
        }
        self._add_caption(fields, caption)
        return self._user_message(user, chat, reply_to, "photo", fields, stored)

    def send_voice(
        self,
        user: User | int,
        data: bytes = b"OggS\x00stand-in-voice",
        duration: int = 2,
        chat: ChatRef | None = None,
        *,
        caption: str | None = None,
        reply_to: UserMessage | BotMessage | int | None = None,
    ) -> UserMessage:
        stored = self._store_file("voice", data, "audio/ogg", None)
        fields: JSON = {"voice": self._media_json("voice", stored, {"duration": duration})}
        self._add_caption(fields, caption)
        return self._user_message(user, chat, reply_to, "voice", fields, stored)

    def send_document(
        self,
        user: User | int,
        filename: str,
        data: bytes,
        mime_type: str = "application/octet-stream",
        caption: str | None = None,
        chat: ChatRef | None = None,
        *,
        reply_to: UserMessage | BotMessage | int | None = None,
    ) -> UserMessage:
        """Queue a document message; the bytes are kept so getFile + download work."""
        if not data:
            raise ValueError("Telegram does not accept empty files")
        stored = self._store_file("document", data, mime_type, filename)
        fields: JSON = {"document": self._media_json("document", stored, {})}
        self._add_caption(fields, caption)
        return self._user_message(user, chat, reply_to, "document", fields, stored)

    def edit_text(self, message: UserMessage, new_text: str) -> UserMessage:
        """The user edits one of their text messages: queues an edited_message update."""
        chat = self._chats[message.chat_id]
        current = chat.messages.get(message.message_id)
        if current is None or current.get("from", {}).get("id") != message.from_id:
            raise LookupError(f"message {message.message_id} is not a live user message")
        if "text" not in current:
            raise ValueError("only text messages can be edited with edit_text")
        if not new_text:
            raise ValueError("Telegram clients cannot set empty text")
        edited = {k: v for k, v in current.items() if k != "entities"}
        edited["text"] = new_text
        edited["edit_date"] = int(time.time())
        found = auto_entities(new_text)
        if found:
            edited["entities"] = found
        chat.messages[message.message_id] = edited
        self._deliver_user_message(chat, edited, "edited_message")
        return UserMessage(
            edited["message_id"], chat.id, message.from_id, edited["date"], "text", new_text, edited
        )

    def redeliver(self, message: UserMessage) -> None:
        """Deliver a user's message again under a new update id, as Telegram does after a
        webhook timeout or a restart before the offset was confirmed."""
        self._enqueue("message", message.json)

    def press(
        self,
        user: User | int,
        message: BotMessage | tuple[int, int],
        callback_data: str,
        *,
        forged: bool = False,
    ) -> str:
        """Press an inline button on a bot message; returns the callback query id.

        Raises LookupError if the message is gone and ValueError if its *current* keyboard has
        no button with that callback_data (so a test cannot press what a user could not).
        """
        state = self._user_state(user)
        chat_id, message_id = (
            (message.chat_id, message.message_id) if isinstance(message, BotMessage) else message
        )
        chat = self._chats.get(chat_id)
        current = chat.messages.get(message_id) if chat else None
        if chat is None or current is None:
            raise LookupError(f"message {message_id} in chat {chat_id} does not exist (deleted?)")
        if current.get("from", {}).get("id") != self.bot_id:
            raise ValueError("inline buttons can only be pressed on messages the bot sent")
        if chat.group is not None and state.user.id not in chat.group.members:
            raise ValueError(f"user {state.user.id} is not a member of group {chat_id}")
        if chat.group is None and chat_id != state.user.id:
            raise ValueError("only the owner of a private chat can press buttons in it")
        rows = (current.get("reply_markup") or {}).get("inline_keyboard") or []
        datas = [b.get("callback_data") for row in rows for b in row]
        # A forged press carries data the keyboard never had (a modified client can send it).
        if callback_data not in datas and not forged:
            raise ValueError(
                f"message {message_id} has no button with callback_data {callback_data!r}; "
                f"its buttons carry {datas!r}"
            )
        query_id = str(next(self._query_ids))
        self._queries[query_id] = query_state = _Query(state.user.id, callback_data)
        query = {
            "id": query_id,
            "from": state.user.to_json(),
            "message": current,
            # Stable per (bot, chat) pair, like Telegram's opaque chat_instance.
            "chat_instance": str((self.bot_id * 1_000_003 + chat_id) % 10**18),
            "data": callback_data,
        }
        query_state.update = query
        self._enqueue("callback_query", query)
        return query_id

    def redeliver_press(self, query_id: str) -> None:
        """Deliver a button press again, same callback query id, under a new update id (as
        Telegram does when the bot did not confirm the update in time)."""
        query = self._queries[query_id].update
        assert query is not None
        self._enqueue("callback_query", query)

    def inject_texts(
        self, count: int, *, users: int = 1, first_user_id: int = 1_000_000, text: str = "hello"
    ) -> JSON:
        """Bulk helper for benchmarks: ``count`` text updates spread over ``users`` users."""
        first_update: int | None = None
        last_update: int | None = None
        for n in range(count):
            uid = first_user_id + n % users
            if uid not in self._users:
                self.user(uid, f"User {uid}", f"user{uid}")
            self.send_text(uid, text)
            last_update = self._last_enqueued_id
            if first_update is None:
                first_update = last_update
        return {
            "ok": True,
            "injected": count,
            "first_update_id": first_update,
            "last_update_id": last_update,
        }

    def enqueue_update(self, kind: str, payload: JSON) -> int:
        """Queue any update exactly as given, however malformed (no sender, an unknown shape,
        a field of the wrong type): what a bot must survive. Returns its update id."""
        self._enqueue(kind, payload)
        assert self._last_enqueued_id is not None
        return self._last_enqueued_id

    # ------------------------------------------------------------------ test side: faults

    def fail(
        self,
        method: str,
        code: int = 502,
        description: str = "Bad Gateway",
        *,
        times: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer calls of ``method`` with an error, as Telegram does when it has trouble (5xx)
        or floods (429 with ``retry_after``): every call until ``heal()``, or the next ``times``
        calls. Failed calls are logged in ``rejections`` like any other."""
        parameters = {"retry_after": retry_after} if retry_after is not None else None
        self._faults[method.lower()] = _Fault(code, description, parameters, times)

    def hold(self, method: str, *, delivered: bool = False) -> None:
        """Hold calls of ``method`` in flight until ``release()``, as a stalled Telegram does.

        ``delivered=False``: a call waits before it takes effect (the message is not in the
        chat yet); one whose client has gone by the release never takes effect, like a request
        that never reached Telegram. ``delivered=True``: a call takes effect (the message is
        in the chat) and its answer is held: the client cannot know whether it was sent.
        """
        self._holds[method.lower()] = _Hold(delivered)

    def held(self, method: str) -> int:
        """How many calls of ``method`` are held now (their clients still waiting)."""
        hold = self._holds.get(method.lower())
        return sum(not handler.closed for handler in hold.waiting) if hold is not None else 0

    def release(self, method: str | None = None) -> None:
        """Let held calls go on (of one method, or all), and hold no more."""
        names = list(self._holds) if method is None else [method.lower()]
        for name in names:
            hold = self._holds.pop(name, None)
            if hold is not None:
                hold.released.set()

    async def _wait_for_release(self, hold: _Hold, handler: _ApiHandler) -> None:
        hold.waiting.append(handler)
        self._changed()
        try:
            await hold.released.wait()
        finally:
            hold.waiting.remove(handler)

    def heal(self, method: str | None = None) -> None:
        """End injected faults: of one method, or all."""
        if method is None:
            self._faults.clear()
        else:
            self._faults.pop(method.lower(), None)

    def _check_fault(self, method: str) -> None:
        fault = self._faults.get(method.lower())
        if fault is None:
            return
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self._faults[method.lower()]
        raise ApiError(fault.code, fault.description, fault.parameters)

    # ------------------------------------------------------------------ test side: inspection

    def messages_to(self, chat: ChatRef) -> list[BotMessage]:
        """Everything the bot sent or edited in a chat, oldest first (edits are entries too)."""
        found = self._chats.get(_chat_id_of(chat))
        return list(found.outgoing) if found else []

    def message_json(self, chat: ChatRef, message_id: int) -> JSON | None:
        """Current Telegram JSON of a message in a chat, or None once deleted."""
        found = self._chats.get(_chat_id_of(chat))
        return found.messages.get(message_id) if found else None

    async def wait_for_message(
        self,
        chat: ChatRef,
        predicate: Callable[[BotMessage], bool] | None = None,
        timeout: float = 15.0,
    ) -> BotMessage:
        """Next not-yet-returned send/edit in the chat that matches ``predicate``.

        Each entry is handed out once, so consecutive calls walk through the bot's replies in
        order; entries skipped by a predicate stay available to later calls.
        """
        chat_id = _chat_id_of(chat)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self._take_outgoing(chat_id, predicate)
            if found is not None:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [(m.kind, m.text) for m in self.messages_to(chat_id)][-5:]
                recent = [(r.method, r.description) for r in self.rejections[-5:]]
                raise TimeoutError(
                    f"no matching bot message in chat {chat_id} within {timeout}s; last entries "
                    f"there: {seen!r}; last rejections: {recent!r}"
                )
            await asyncio.wait({self._change_future()}, timeout=remaining)

    async def wait_until(
        self, condition: Callable[[], Any], timeout: float = 15.0, poll: float = 0.02
    ) -> Any:
        """Wait until ``condition()`` is truthy and return its value.

        Re-checked on every stand-in state change and every ``poll`` seconds, so conditions on
        the bot's own state (an error handler's list, a database row) work too.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = condition()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            await asyncio.wait({self._change_future()}, timeout=min(remaining, poll))

    @property
    def parse_errors(self) -> list[Rejection]:
        """Rejections caused by formatting ("can't parse entities")."""
        return [r for r in self.rejections if "can't parse entities" in r.description]

    def calls(self, method: str) -> list[RequestRecord]:
        """Logged requests of one method (name matched case-insensitively)."""
        wanted = method.lower()
        return [r for r in self.requests if r.method.lower() == wanted]

    def get_file(self, file_id: str) -> StoredFile:
        return self._files[file_id]

    def commands(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        return list(self._commands.get((self._scope_key(scope), language_code), []))

    @property
    def pending_updates(self) -> int:
        return len(self._updates)

    @property
    def long_poll_waiting(self) -> bool:
        """True while a getUpdates long poll is parked waiting for updates."""
        return self._poller is not None

    @property
    def webhook_url(self) -> str:
        return self._webhook_url

    def stats(self) -> JSON:
        return {
            "requests_total": sum(self._method_counts.values()),
            "requests_by_method": dict(self._method_counts),
            "errors_by_code": {str(k): v for k, v in self._error_counts.items()},
            "too_many_requests": self.too_many_requests,
            "updates_enqueued": self._updates_enqueued,
            "updates_filtered": self._updates_filtered,
            "updates_pending": len(self._updates),
            "webhook_delivered": self._webhook_delivered,
            "bot_messages": self._bot_messages,
            "uptime_s": round(time.monotonic() - self._started_at, 3) if self._started_at else 0,
        }

    # ------------------------------------------------------------------ internals: state

    @property
    def _bot_json(self) -> JSON:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def _changed(self) -> None:
        change = self._change
        if change is not None:
            self._change = None
            if not change.done():
                change.set_result(None)

    def _change_future(self) -> asyncio.Future[None]:
        if self._change is None or self._change.done():
            self._change = asyncio.get_running_loop().create_future()
        return self._change

    def _take_outgoing(
        self, chat_id: int, predicate: Callable[[BotMessage], bool] | None
    ) -> BotMessage | None:
        chat = self._chats.get(chat_id)
        if chat is None:
            return None
        for index in range(chat.first_unconsumed, len(chat.outgoing)):
            if chat.consumed[index]:
                continue
            entry = chat.outgoing[index]
            if predicate is None or predicate(entry):
                chat.consumed[index] = True
                while (
                    chat.first_unconsumed < len(chat.consumed)
                    and chat.consumed[chat.first_unconsumed]
                ):
                    chat.first_unconsumed += 1
                return entry
        return None

    def _user_state(self, user: User | int) -> _UserState:
        uid = user.id if isinstance(user, User) else int(user)
        state = self._users.get(uid)
        if state is None:
            raise LookupError(f"unknown user {uid}; register it with standin.user(...) first")
        return state

    def _user_json_or_none(self, user_id: int) -> JSON | None:
        state = self._users.get(user_id)
        return state.user.to_json() if state else None

    def _enqueue(self, kind: str, payload: JSON) -> None:
        if kind not in self._allowed:
            # Telegram filters at creation time; the update is simply never produced.
            self._updates_filtered += 1
            return
        update_id = next(self._update_ids)
        self._last_enqueued_id = update_id
        self._updates.append({"update_id": update_id, kind: payload})
        self._updates_enqueued += 1
        if self._poller is not None:
            self._poller.wake("update")
        if self._webhook_url:
            self._webhook_wakeup.set()
        self._changed()

    def _my_chat_member(self, user: User, old: str, new: str) -> None:
        bot = self._bot_json
        self._enqueue(
            "my_chat_member",
            {
                "chat": self._chats[user.id].json,
                "from": user.to_json(),
                "date": int(time.time()),
                "old_chat_member": {"status": old, "user": bot}
                | ({"until_date": 0} if old == "kicked" else {}),
                "new_chat_member": {"status": new, "user": bot}
                | ({"until_date": 0} if new == "kicked" else {}),
            },
        )

    def _store_file(
        self, kind: str, data: bytes, mime_type: str | None, file_name: str | None
    ) -> StoredFile:
        n = next(self._file_ids)
        ext = ""
        if file_name and "." in file_name:
            ext = "." + file_name.rsplit(".", 1)[1]
        elif mime_type:
            ext = mimetypes.guess_extension(mime_type) or ""
        stored = StoredFile(
            file_id=f"standin_{kind}_{n}",
            file_unique_id=f"AQAD{n:06d}",
            file_path=f"{_MEDIA_FOLDERS[kind]}/file_{n}{ext}",
            data=data,
            mime_type=mime_type,
            file_name=file_name,
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    @staticmethod
    def _media_json(kind: str, stored: StoredFile, extra: JSON) -> Any:
        base: JSON = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
        }
        if kind == "photo":
            # Real Telegram returns several sizes; one is enough for bots that take photo[-1].
            return [base | {"width": extra.get("width", 800), "height": extra.get("height", 600)}]
        if kind == "sticker":
            return base | {
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        if stored.mime_type:
            base["mime_type"] = stored.mime_type
        if kind in ("document", "audio") and stored.file_name:
            base["file_name"] = stored.file_name
        if kind in ("voice", "audio", "video", "animation"):
            base["duration"] = int(extra.get("duration") or 0)
        if kind in ("video", "animation"):
            base["width"] = int(extra.get("width") or 640)
            base["height"] = int(extra.get("height") or 360)
        return base

    @staticmethod
    def _add_caption(fields: JSON, caption: str | None) -> None:
        if caption:
            fields["caption"] = caption
            found = auto_entities(caption)
            if found:
                fields["caption_entities"] = found

    def _user_message(
        self,
        user: User | int,
        chat_ref: ChatRef | None,
        reply_to: UserMessage | BotMessage | int | None,
        kind: str,
        fields: JSON,
        stored: StoredFile | None,
    ) -> UserMessage:
        state = self._user_state(user)
        chat_id = state.user.id if chat_ref is None else _chat_id_of(chat_ref)
        chat = self._chats.get(chat_id)
        if chat is None:
            raise LookupError(f"unknown chat {chat_id}; register it with standin.group(...)")
        if chat.group is not None and state.user.id not in chat.group.members:
            raise ValueError(f"user {state.user.id} is not a member of group {chat_id}")
        if chat.type == "private":
            if chat_id != state.user.id:
                raise ValueError("a user can only write in their own private chat with the bot")
            state.started = True
            if state.blocked:
                self.unblock(state.user)  # clients unblock a bot before writing to it
        message: JSON = {
            "message_id": chat.next_message_id,
            "from": state.user.to_json(),
            "chat": chat.json,
            "date": int(time.time()),
        }
        chat.next_message_id += 1
        if reply_to is not None:
            target_id = reply_to if isinstance(reply_to, int) else reply_to.message_id
            target = chat.messages.get(target_id)
            if target is None:
                raise LookupError(f"message {target_id} does not exist in chat {chat_id}")
            message["reply_to_message"] = _without_reply(target)
        message.update(fields)
        chat.messages[message["message_id"]] = message
        self._deliver_user_message(chat, message, "message")
        return UserMessage(
            message["message_id"],
            chat.id,
            state.user.id,
            message["date"],
            kind,
            fields.get("text", fields.get("caption")),
            message,
            stored,
        )

    def _deliver_user_message(self, chat: _Chat, message: JSON, kind: str) -> None:
        if chat.group is not None and self.group_privacy and not self._visible_in_privacy(message):
            return
        self._enqueue(kind, message)

    def _visible_in_privacy(self, message: JSON) -> bool:
        # Privacy mode: commands, replies to the bot and mentions of the bot get through.
        text = message.get("text") or message.get("caption") or ""
        if text.startswith("/"):
            return True
        if f"@{self.bot_username}".lower() in text.lower():
            return True
        replied = message.get("reply_to_message") or {}
        return replied.get("from", {}).get("id") == self.bot_id

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

    # ------------------------------------------------------------------ internals: checks

    def _target_chat(self, p: _Params) -> _Chat:
        raw = p.raw("chat_id")
        if raw is None or raw == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        chat: _Chat | None = None
        if isinstance(raw, str) and raw.startswith("@"):
            name = raw[1:].lower()
            chat = next(
                (
                    c
                    for c in self._chats.values()
                    if c.group is not None and (c.group.username or "").lower() == name
                ),
                None,
            )
        else:
            try:
                chat = self._chats.get(int(raw))
            except (TypeError, ValueError):
                chat = None
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        return chat

    def _check_deliverable(self, chat: _Chat) -> None:
        if chat.user_id is None:
            return
        state = self._users[chat.user_id]
        if state.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if not state.started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")

    def _check_rate(self, chat: _Chat, method: str) -> None:
        if method not in self.rate_limited_methods:
            return
        limiters: list[Limiter] = []
        if self._global_limiter is not None:
            limiters.append(self._global_limiter)
        spec = self.private_chat_limit if chat.type == "private" else self.group_chat_limit
        if spec is not None:
            limiter = self._chat_limiters.get(chat.id)
            if limiter is None:
                limiter = self._chat_limiters[chat.id] = spec.make()
            limiters.append(limiter)
        if not limiters:
            return
        now = time.monotonic()
        wait = max(limiter.wait_time(now) for limiter in limiters)
        if wait > 0:
            seconds = retry_after_seconds(wait)
            self.too_many_requests += 1
            raise ApiError(
                429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds}
            )
        for limiter in limiters:
            limiter.consume(now)

    def _format(
        self, source: str | None, parse_mode: str | None, explicit: Any, *, caption: bool
    ) -> tuple[str, list[JSON]]:
        if not source:
            if caption:
                return "", []
            raise ApiError(400, "Bad Request: message text is empty")
        try:
            text, entities = parse_text(
                source,
                parse_mode,
                strict_ampersand=self.strict_html_ampersand,
                user_lookup=self._user_json_or_none,
            )
        except EntityParseError as exc:
            raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        except ValueError:
            raise ApiError(400, "Bad Request: unsupported parse_mode") from None
        if not parse_mode and explicit:
            entities = self._explicit_entities(explicit, utf16_len(text))
        text, entities = trim_text(text, entities)
        if not text:
            if caption:
                return "", []
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > (CAPTION_LIMIT if caption else MESSAGE_LIMIT):
            raise ApiError(
                400,
                "Bad Request: message caption is too long"
                if caption
                else "Bad Request: message is too long",
            )
        return text, entities

    @staticmethod
    def _explicit_entities(raw: Any, text_len: int) -> list[JSON]:
        if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
            raise ApiError(400, "Bad Request: can't parse entities JSON object")
        result: list[JSON] = []
        for entity in raw:
            offset, length = entity.get("offset"), entity.get("length")
            if not isinstance(offset, int) or not isinstance(length, int) or "type" not in entity:
                raise ApiError(400, "Bad Request: can't parse entities JSON object")
            if offset + length > text_len or offset < 0 or length <= 0:
                continue  # Telegram drops entities outside the text instead of failing
            result.append(entity)
        return result

    def _reply_markup(self, p: _Params) -> JSON | None:
        raw = p.raw("reply_markup")
        if raw is None or raw == "":
            return None
        markup = raw
        if isinstance(raw, str):
            try:
                markup = json.loads(raw)
            except ValueError:
                markup = None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            self._check_inline_keyboard(markup["inline_keyboard"])
            return {"inline_keyboard": markup["inline_keyboard"]}
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise ApiError(400, 'Bad Request: field "keyboard" must be an Array of Arrays')
            for row in rows:
                for button in row:
                    text = button if isinstance(button, str) else (button or {}).get("text")
                    if not isinstance(text, str) or not text:
                        raise ApiError(400, "Bad Request: keyboard button text must be non-empty")
            return markup
        if markup.get("remove_keyboard") or markup.get("force_reply"):
            return markup
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")

    @staticmethod
    def _check_inline_keyboard(rows: Any) -> None:
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise ApiError(
                400,
                'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup must be an '
                "Array of Arrays",
            )
        for row in rows:
            for button in row:
                if not isinstance(button, dict):
                    raise ApiError(
                        400,
                        "Bad Request: can't parse InlineKeyboardButton: InlineKeyboardButton "
                        "must be an Object",
                    )
                text = button.get("text")
                if not isinstance(text, str):
                    raise ApiError(
                        400,
                        'Bad Request: can\'t parse InlineKeyboardButton: Field "text" must be of '
                        "type String",
                    )
                if not text:
                    raise ApiError(400, "Bad Request: BUTTON_TEXT_INVALID")
                # The Bot API treats an empty callback_data/url as absent.
                actions = [
                    k
                    for k in _BUTTON_ACTIONS
                    if k in button
                    and button[k] is not None
                    and not (k in ("callback_data", "url") and button[k] == "")
                ]
                if not actions:
                    raise ApiError(
                        400,
                        "Bad Request: can't parse InlineKeyboardButton: Text buttons are not "
                        "allowed in the inline keyboard",
                    )
                data = button.get("callback_data")
                if data not in (None, ""):
                    if not isinstance(data, str):
                        raise ApiError(
                            400,
                            "Bad Request: can't parse InlineKeyboardButton: Field "
                            '"callback_data" must be of type String',
                        )
                    if len(data.encode("utf-8")) > CALLBACK_DATA_LIMIT:
                        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                url = button.get("url")
                if url not in (None, "") and not re.match(
                    r"^(https?|tg)://[^\s/?#]+\S*$", str(url), re.IGNORECASE
                ):
                    raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")

    def _reply_target(self, chat: _Chat, p: _Params) -> int | None:
        parameters = p.get_json("reply_parameters")
        if isinstance(parameters, dict):
            message_id = parameters.get("message_id")
            allow_missing = bool(parameters.get("allow_sending_without_reply"))
            other_chat = parameters.get("chat_id")
            if other_chat not in (None, chat.id, str(chat.id)):
                return None  # cross-chat quotes are not modelled; accept silently
        elif parameters is not None:
            raise ApiError(400, "Bad Request: can't parse reply parameters JSON object")
        else:
            message_id = p.get_int("reply_to_message_id")
            allow_missing = p.get_bool("allow_sending_without_reply")
        if not message_id:
            return None
        try:
            message_id = int(message_id)
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: invalid reply_to_message_id specified") from None
        if message_id not in chat.messages:
            if allow_missing:
                return None
            raise ApiError(400, "Bad Request: message to be replied not found")
        return message_id

    # ------------------------------------------------------------------ internals: bot messages

    def _new_bot_message(self, chat: _Chat, reply_to: int | None) -> JSON:
        message: JSON = {
            "message_id": chat.next_message_id,
            "from": self._bot_json,
            "chat": chat.json,
            "date": int(time.time()),
        }
        chat.next_message_id += 1
        if reply_to is not None:
            message["reply_to_message"] = _without_reply(chat.messages[reply_to])
        return message

    def _log_bot_message(
        self,
        kind: str,
        method: str,
        chat: _Chat,
        message: JSON,
        *,
        source: str | None,
        parse_mode: str | None,
        reply_markup: JSON | None,
        disable_notification: bool = False,
        link_preview_options: JSON | None = None,
        file: StoredFile | None = None,
    ) -> BotMessage:
        chat.messages[message["message_id"]] = message
        chat.sources[message["message_id"]] = (source, parse_mode)
        replied = message.get("reply_to_message")
        entry = BotMessage(
            kind=kind,
            method=method,
            message_id=message["message_id"],
            chat_id=chat.id,
            text=message.get("text", message.get("caption")),
            source=source,
            parse_mode=parse_mode,
            entities=tuple(message.get("entities", message.get("caption_entities", ()))),
            reply_markup=reply_markup,
            reply_to=replied["message_id"] if replied else None,
            date=message["date"],
            edit_date=message.get("edit_date"),
            disable_notification=disable_notification,
            link_preview_options=link_preview_options,
            file=file,
            json=message,
        )
        chat.outgoing.append(entry)
        chat.consumed.append(False)
        self._bot_messages += 1
        self._changed()
        return entry

    def _editable(self, p: _Params) -> tuple[_Chat, JSON]:
        if p.raw("inline_message_id"):
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")  # inline mode not modelled
        chat = self._target_chat(p)
        message_id = p.get_int("message_id")
        if not message_id:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        current = chat.messages.get(message_id)
        if current is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if current.get("from", {}).get("id") != self.bot_id:
            raise ApiError(400, "Bad Request: message can't be edited")
        return chat, current

    # ------------------------------------------------------------------ Bot API methods

    def _m_true(self, p: _Params, files: Any, handler: Any) -> bool:
        return True

    def _m_get_me(self, p: _Params, files: Any, handler: Any) -> JSON:
        return self._bot_json | {
            "can_join_groups": True,
            "can_read_all_group_messages": not self.group_privacy,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_get_updates(self, p: _Params, files: Any, handler: _ApiHandler) -> Any:
        if self._webhook_url:
            raise ApiError(409, _WEBHOOK_CONFLICT)
        offset = p.get_int("offset", 0) or 0
        limit = min(max(p.get_int("limit", 100) or 100, 1), 100)
        timeout = max(p.get_float("timeout", 0.0), 0.0)
        allowed = p.get_json("allowed_updates")
        if allowed is not None:
            if not isinstance(allowed, list):
                raise ApiError(400, "Bad Request: can't parse allowed_updates JSON object")
            self._allowed = frozenset(allowed) & ALL_UPDATE_TYPES or DEFAULT_UPDATE_TYPES
        updates = self._updates
        if offset > 0:
            while updates and updates[0]["update_id"] < offset:
                updates.popleft()
        elif offset < 0:
            while len(updates) > -offset:
                updates.popleft()
        if self._poller is not None:
            # Telegram answers the older of two concurrent long polls with 409.
            self._poller.wake("terminated")
        if not updates and timeout > 0 and not self._stopping:
            poller = _Poller()
            self._poller = poller
            handler.poller = poller
            try:
                done, _ = await asyncio.wait({poller.future}, timeout=timeout)
                reason = poller.future.result() if done else "timeout"
                if self._poller is poller:
                    self._poller = None
                if reason == "closed":
                    return _NO_RESPONSE
                if reason == "terminated":
                    # PTB cancels its poll and immediately sends a final getUpdates; give the
                    # close notification a moment so that is not mistaken for a second bot.
                    await asyncio.sleep(self.conflict_grace)
                    if poller.closed:
                        return _NO_RESPONSE
                    raise ApiError(409, _POLL_CONFLICT)
                if reason == "webhook":
                    raise ApiError(409, _WEBHOOK_CONFLICT)
            finally:
                if self._poller is poller:
                    self._poller = None
                handler.poller = None
        return list(itertools.islice(updates, limit))

    def _m_set_webhook(self, p: _Params, files: Any, handler: Any) -> _Described:
        url = (p.get_str("url") or "").strip()
        if p.get_bool("drop_pending_updates"):
            self._updates.clear()
        if not url:
            return self._delete_webhook()
        if not re.match(r"^https?://[^\s/?#]+", url, re.IGNORECASE):
            raise ApiError(400, "Bad Request: bad webhook: Wrong HTTP URL specified")
        secret = p.get_str("secret_token")
        if secret is not None and secret != "" and not re.match(r"^[A-Za-z0-9_-]{1,256}$", secret):
            raise ApiError(
                400, "Bad Request: bad webhook: secret token contains unallowed characters"
            )
        max_connections = p.get_int("max_connections", 40) or 40
        if not 1 <= max_connections <= 100:
            raise ApiError(
                400, "Bad Request: bad webhook: max_connections must be between 1 and 100"
            )
        allowed = p.get_json("allowed_updates")
        if allowed is not None:
            if not isinstance(allowed, list):
                raise ApiError(400, "Bad Request: can't parse allowed_updates JSON object")
            self._allowed = frozenset(allowed) & ALL_UPDATE_TYPES or DEFAULT_UPDATE_TYPES
            self._webhook_allowed = list(allowed)
        already = url == self._webhook_url and (secret or None) == self._webhook_secret
        self._webhook_url = url
        self._webhook_secret = secret or None
        self._webhook_max_connections = max_connections
        self._webhook_error = None
        if self._poller is not None:
            self._poller.wake("webhook")
        self._webhook_wakeup.set()
        return _Described(True, "Webhook is already set" if already else "Webhook was set")

    def _delete_webhook(self) -> _Described:
        had = bool(self._webhook_url)
        self._webhook_url = ""
        self._webhook_secret = None
        self._webhook_allowed = None
        self._webhook_error = None
        return _Described(True, "Webhook was deleted" if had else "Webhook is already deleted")

    def _m_delete_webhook(self, p: _Params, files: Any, handler: Any) -> _Described:
        if p.get_bool("drop_pending_updates"):
            self._updates.clear()
        return self._delete_webhook()

    def _m_get_webhook_info(self, p: _Params, files: Any, handler: Any) -> JSON:
        info: JSON = {
            "url": self._webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook_url:
            info["max_connections"] = self._webhook_max_connections
            info["ip_address"] = "127.0.0.1"
            if self._webhook_allowed is not None:
                info["allowed_updates"] = self._webhook_allowed
            if self._webhook_error is not None:
                info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    @staticmethod
    def _scope_key(scope: Any) -> str:
        return json.dumps(scope or {"type": "default"}, sort_keys=True)

    def _command_key(self, p: _Params) -> tuple[str, str]:
        """The scope and language a command list is stored under, checked as Telegram does:
        a known scope type; for the chat scopes a chat the bot knows ("chat not found"), a
        group for the administrators' and a member's scopes; a two-letter ISO 639-1 code or
        none. (The error texts for a bad scope type and language code are our wording.)"""
        scope = p.get_json("scope") or {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in COMMAND_SCOPES:
            raise ApiError(400, "Bad Request: unsupported bot command scope type")
        if scope["type"] in ("chat", "chat_administrators", "chat_member"):
            chat = self._target_chat(_Params({"chat_id": scope.get("chat_id")}))
            scope = {**scope, "chat_id": chat.id}
            if scope["type"] != "chat" and chat.group is None:
                raise ApiError(400, "Bad Request: chat is not a group")
            if scope["type"] == "chat_member":
                user_id = scope.get("user_id")
                if not isinstance(user_id, int) or self._user_json_or_none(user_id) is None:
                    raise ApiError(400, "Bad Request: user not found")
        language = p.get_str("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise ApiError(400, "Bad Request: invalid language code specified")
        return self._scope_key(scope), language

    def _m_set_my_commands(self, p: _Params, files: Any, handler: Any) -> bool:
        commands = p.get_json("commands")
        if not isinstance(commands, list) or not all(isinstance(c, dict) for c in commands):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        if len(commands) > 100:
            raise ApiError(400, "Bad Request: too many commands specified")
        cleaned: list[JSON] = []
        for command in commands:
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not re.match(r"^[a-z0-9_]{1,32}$", name):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name, "description": description})
        self._commands[self._command_key(p)] = cleaned
        return True

    def _m_get_my_commands(self, p: _Params, files: Any, handler: Any) -> list[JSON]:
        return list(self._commands.get(self._command_key(p), []))

    def _m_delete_my_commands(self, p: _Params, files: Any, handler: Any) -> bool:
        self._commands.pop(self._command_key(p), None)
        return True

    def _m_send_message(self, p: _Params, files: Any, handler: Any) -> JSON:
        chat = self._target_chat(p)
        source = p.get_str("text")
        parse_mode = p.get_str("parse_mode") or None
        text, entities = self._format(source, parse_mode, p.get_json("entities"), caption=False)
        markup = self._reply_markup(p)
        reply_to = self._reply_target(chat, p)
        link_preview = p.get_json("link_preview_options")
        if link_preview is None and p.get_bool("disable_web_page_preview"):
            link_preview = {"is_disabled": True}
        if link_preview is not None and not isinstance(link_preview, dict):
            raise ApiError(400, "Bad Request: can't parse link preview options JSON object")
        self._check_deliverable(chat)
        self._check_rate(chat, "sendMessage")
        message = self._new_bot_message(chat, reply_to)
        message["text"] = text
        if entities:
            message["entities"] = entities
        if link_preview:
            message["link_preview_options"] = link_preview
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # only inline keyboards are part of a message
        self._log_bot_message(
            "sent",
            "sendMessage",
            chat,
            message,
            source=source,
            parse_mode=parse_mode,
            reply_markup=markup,
            disable_notification=p.get_bool("disable_notification"),
            link_preview_options=link_preview,
        )
        return message

    def _m_edit_message_text(self, p: _Params, files: Any, handler: Any) -> JSON:
        chat, current = self._editable(p)
        source = p.get_str("text")
        parse_mode = p.get_str("parse_mode") or None
        text, entities = self._format(source, parse_mode, p.get_json("entities"), caption=False)
        markup = self._reply_markup(p)
        if markup is not None and "inline_keyboard" not in markup:
            raise ApiError(400, "Bad Request: inline keyboard expected")
        if "text" not in current:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        link_preview = p.get_json("link_preview_options")
        # Without reply_markup the edit removes the keyboard, exactly like Telegram.
        if (
            current.get("text") == text
            and current.get("entities", []) == entities
            and current.get("reply_markup") == markup
        ):
            raise ApiError(400, _NOT_MODIFIED)
        self._check_deliverable(chat)
        self._check_rate(chat, "editMessageText")
        edited = {
            k: v for k, v in current.items() if k not in ("entities", "reply_markup", "edit_date")
        }
        edited["text"] = text
        edited["edit_date"] = int(time.time())
        if entities:
            edited["entities"] = entities
        if markup:
            edited["reply_markup"] = markup
        if isinstance(link_preview, dict):
            edited["link_preview_options"] = link_preview
        self._log_bot_message(
            "edited",
            "editMessageText",
            chat,
            edited,
            source=source,
            parse_mode=parse_mode,
            reply_markup=markup,
            link_preview_options=link_preview if isinstance(link_preview, dict) else None,
        )
        return edited

    def _m_edit_message_reply_markup(self, p: _Params, files: Any, handler: Any) -> JSON:
        chat, current = self._editable(p)
        markup = self._reply_markup(p)
        if markup is not None and "inline_keyboard" not in markup:
            raise ApiError(400, "Bad Request: inline keyboard expected")
        if current.get("reply_markup") == markup or (
            not current.get("reply_markup") and not (markup or {}).get("inline_keyboard")
        ):
            raise ApiError(400, _NOT_MODIFIED)
        self._check_deliverable(chat)
        self._check_rate(chat, "editMessageReplyMarkup")
        edited = {k: v for k, v in current.items() if k not in ("reply_markup", "edit_date")}
        edited["edit_date"] = int(time.time())
        if markup and markup.get("inline_keyboard"):
            edited["reply_markup"] = markup
        source, parse_mode = chat.sources.get(current["message_id"], (None, None))
        self._log_bot_message(
            "edited",
            "editMessageReplyMarkup",
            chat,
            edited,
            source=source,
            parse_mode=parse_mode,
            reply_markup=markup,
        )
        return edited

    def _m_answer_callback_query(self, p: _Params, files: Any, handler: Any) -> bool:
        query_id = p.get_str("callback_query_id")
        query = self._queries.get(query_id or "")
        if query is None or query.answered:
            raise ApiError(400, _QUERY_INVALID)
        query.answered = True
        self.callback_answers.append(
            CallbackAnswer(
                query_id=query_id or "",
                user_id=query.user_id,
                data=query.data,
                text=p.get_str("text"),
                show_alert=p.get_bool("show_alert"),
                url=p.get_str("url"),
                cache_time=p.get_int("cache_time"),
                at=time.monotonic(),
            )
        )
        self._changed()
        return True

    def _m_send_chat_action(self, p: _Params, files: Any, handler: Any) -> bool:
        chat = self._target_chat(p)
        action = p.get_str("action")
        if action not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        self._check_deliverable(chat)
        self.chat_actions.append(ChatAction(chat.id, action, time.monotonic()))
        return True

    def _m_delete_message(self, p: _Params, files: Any, handler: Any) -> bool:
        chat = self._target_chat(p)
        message_id = p.get_int("message_id")
        if not message_id:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        current = chat.messages.get(message_id)
        if current is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        own = current.get("from", {}).get("id") == self.bot_id
        is_admin = chat.group is not None and self.bot_id in chat.group.admins
        if chat.group is not None and not own and not is_admin:
            raise ApiError(400, "Bad Request: message can't be deleted")
        del chat.messages[message_id]
        self._changed()
        return True

    def _media_sender(self, kind: str, method: str) -> Callable[..., JSON]:
        def send(p: _Params, files: dict[str, tornado.httputil.HTTPFile], handler: Any) -> JSON:
            chat = self._target_chat(p)
            stored = self._media_input(p, files, kind)
            parse_mode = p.get_str("parse_mode") or None
            source = p.get_str("caption") if kind != "sticker" else None
            caption, entities = self._format(
                source, parse_mode, p.get_json("caption_entities"), caption=True
            )
            markup = self._reply_markup(p)
            reply_to = self._reply_target(chat, p)
            self._check_deliverable(chat)
            self._check_rate(chat, method)
            message = self._new_bot_message(chat, reply_to)
            extra = {k: p.get_int(k) for k in ("duration", "width", "height")}
            message[kind] = self._media_json(kind, stored, extra)
            if caption:
                message["caption"] = caption
            if entities:
                message["caption_entities"] = entities
            if markup and "inline_keyboard" in markup:
                message["reply_markup"] = markup
            self._log_bot_message(
                "sent",
                method,
                chat,
                message,
                source=source,
                parse_mode=parse_mode,
                reply_markup=markup,
                disable_notification=p.get_bool("disable_notification"),
                file=stored,
            )
            return message

        return send

    def _media_input(
        self, p: _Params, files: dict[str, tornado.httputil.HTTPFile], kind: str
    ) -> StoredFile:
        value = p.raw(kind)
        upload = files.get(kind)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value[len("attach://") :])
        if upload is not None:
            if not upload.body:
                raise ApiError(400, "Bad Request: file must be non-empty")
            if len(upload.body) > UPLOAD_LIMIT:
                raise ApiError(413, "Request Entity Too Large")
            mime = upload.content_type
            if not mime or mime == "application/octet-stream":
                mime = mimetypes.guess_type(upload.filename or "")[0] or mime or None
            return self._store_file(kind, upload.body, mime, upload.filename or None)
        if isinstance(value, str) and value:
            stored = self._files.get(value)
            if stored is not None:
                return stored
            if value.startswith(("http://", "https://")):
                raise ApiError(400, "Bad Request: failed to get HTTP URL content")
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        raise ApiError(400, f"Bad Request: there is no {kind} in the request")

    def _m_get_file(self, p: _Params, files: Any, handler: Any) -> JSON:
        file_id = p.get_str("file_id")
        if not file_id:
            raise ApiError(400, "Bad Request: file_id is empty")
        stored = self._files.get(file_id)
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if stored.size > DOWNLOAD_LIMIT:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    def _m_get_chat(self, p: _Params, files: Any, handler: Any) -> JSON:
        chat = self._target_chat(p)
        return chat.json | {
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _m_get_chat_member(self, p: _Params, files: Any, handler: Any) -> JSON:
        chat = self._target_chat(p)
        user_id = p.get_int("user_id")
        if not user_id:
            raise ApiError(400, "Bad Request: user_id is empty")
        if user_id == self.bot_id:
            user_json = self._bot_json
        else:
            found = self._user_json_or_none(user_id)
            if found is None:
                raise ApiError(400, "Bad Request: user not found")
            user_json = found
        group = chat.group
        if group is None:
            status = "member" if user_id in (chat.id, self.bot_id) else "left"
        elif user_id == self.bot_id:
            status = "administrator" if self.bot_id in group.admins else "member"
        elif user_id in group.admins:
            status = "administrator"
        else:
            status = "member" if user_id in group.members else "left"
        if status != "administrator":
            return {"status": status, "user": user_json}
        rights = (
            "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
            "can_restrict_members", "can_promote_members", "can_change_info",
            "can_invite_users", "can_post_stories", "can_edit_stories", "can_delete_stories",
            "can_pin_messages",
        )  # fmt: skip
        return {
            "status": "administrator",
            "user": user_json,
            "can_be_edited": False,
            "is_anonymous": False,
        } | dict.fromkeys(rights, True)

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
