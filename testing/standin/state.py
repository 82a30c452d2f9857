"""The stand-in's limits, error texts and the state it keeps of users, chats, polls and faults."""


import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.web

from .limits import SlidingWindow, TokenBucket
from .records import (
    BotMessage,
    Group,
    User,
    UserMessage,
)

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
    waiting: list[tornado.web.RequestHandler] = field(default_factory=list)


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
