"""Loopback stand-in for the Telegram Bot API, for end-to-end tests of a bot.

Typical use with python-telegram-bot::

    async with BotApiStandIn() as tg:
        app = (
            ApplicationBuilder()
            .token(tg.token)
            .base_url(f"{tg.base_url}/bot")
            .base_file_url(f"{tg.base_url}/file/bot")
            .build()
        )
        alice = tg.user(1, "Alice")
        ...  # start the app, then tg.send_text(alice, "/start")
        reply = await tg.wait_for_message(alice)
"""

from .limits import RateLimit, SlidingWindow, TokenBucket
from .markup import EntityParseError, parse_html, parse_markdown_v2, parse_text, utf16_len
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
from .server import BotApiStandIn
from .state import (
    ALL_UPDATE_TYPES,
    DEFAULT_TOKEN,
    DEFAULT_UPDATE_TYPES,
    SENDING_METHODS,
    ApiError,
)

__all__ = [
    "ALL_UPDATE_TYPES",
    "DEFAULT_TOKEN",
    "DEFAULT_UPDATE_TYPES",
    "SENDING_METHODS",
    "ApiError",
    "BotApiStandIn",
    "BotMessage",
    "CallbackAnswer",
    "ChatAction",
    "EntityParseError",
    "Group",
    "RateLimit",
    "Rejection",
    "RequestRecord",
    "SlidingWindow",
    "StoredFile",
    "TokenBucket",
    "User",
    "UserMessage",
    "parse_html",
    "parse_markdown_v2",
    "parse_text",
    "utf16_len",
]
