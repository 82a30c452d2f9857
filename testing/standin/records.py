"""Plain data objects the stand-in hands to tests: people, chats, messages and logs.

Each object keeps the exact Telegram JSON it corresponds to in ``json`` so a test can assert on
fields this module does not surface as attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BotMessage",
    "CallbackAnswer",
    "ChatAction",
    "Group",
    "Rejection",
    "RequestRecord",
    "StoredFile",
    "User",
    "UserMessage",
]

JSON = dict[str, Any]


@dataclass(frozen=True)
class User:
    """A Telegram user the test controls."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = "ko"
    is_bot: bool = False

    def to_json(self) -> JSON:
        data: JSON = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data


@dataclass
class Group:
    """A group chat the bot is a member of.

    ``members`` and ``admins`` are sets of user ids and may be changed by the test at any time;
    getChatMember reads them on every call.
    """

    id: int
    title: str
    type: str = "group"  # "group" or "supergroup"
    members: set[int] = field(default_factory=set)
    admins: set[int] = field(default_factory=set)
    username: str | None = None

    def to_json(self) -> JSON:
        data: JSON = {"id": self.id, "title": self.title, "type": self.type}
        if self.username:
            data["username"] = self.username
        return data


@dataclass(frozen=True)
class StoredFile:
    """A file the stand-in holds, uploaded by the bot or "sent" by a test user."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    mime_type: str | None = None
    file_name: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class UserMessage:
    """A message a test user sent (what ``send_text`` and friends return)."""

    message_id: int
    chat_id: int
    from_id: int
    date: int
    kind: str  # "text", "sticker", "photo", "voice", "document"
    text: str | None
    json: JSON
    file: StoredFile | None = None


@dataclass(frozen=True)
class BotMessage:
    """One thing the bot did to a message: a send, or an edit (``kind`` says which).

    ``text`` is what the user sees (markup parsed away); ``source`` is the string the bot sent.
    For media messages ``text`` is the caption.
    """

    kind: str  # "sent" or "edited"
    method: str
    message_id: int
    chat_id: int
    text: str | None
    source: str | None
    parse_mode: str | None
    entities: tuple[JSON, ...]
    reply_markup: JSON | None
    reply_to: int | None
    date: int
    edit_date: int | None
    disable_notification: bool
    link_preview_options: JSON | None
    file: StoredFile | None
    json: JSON

    @property
    def buttons(self) -> list[tuple[str, str | None]]:
        """Flat [(text, callback_data or url or None)] of the attached keyboard."""
        return [button for row in self.keyboard for button in row]

    @property
    def keyboard(self) -> list[list[tuple[str, str | None]]]:
        """Rows of (text, callback_data or url or None), inline or reply keyboard alike."""
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        result: list[list[tuple[str, str | None]]] = []
        for row in rows:
            out_row: list[tuple[str, str | None]] = []
            for button in row:
                if isinstance(button, str):
                    out_row.append((button, None))
                else:
                    value = button.get("callback_data", button.get("url"))
                    out_row.append((str(button.get("text", "")), value))
            result.append(out_row)
        return result


@dataclass(frozen=True)
class CallbackAnswer:
    """An answerCallbackQuery call, matched to the press that caused it."""

    query_id: str
    user_id: int
    data: str | None
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None
    at: float


@dataclass(frozen=True)
class ChatAction:
    chat_id: int
    action: str
    at: float


@dataclass(frozen=True)
class RequestRecord:
    """One Bot API call as the stand-in saw it; ``at`` is ``time.monotonic()``."""

    method: str
    at: float
    status: int
    params: JSON


@dataclass(frozen=True)
class Rejection:
    """One error answer (4xx) the stand-in gave, with the exact Telegram description."""

    method: str
    error_code: int
    description: str
    chat_id: int | str | None
    params: JSON
    at: float
    retry_after: int | None = None
