"""The language the bot speaks to a person: the one they last wrote a question in or chose with
/lang (remembered in their user data), else their Telegram app's language; Korean by default.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from telegram import Chat, User

LANGUAGES = ("ko", "en")
# context.user_data[REMEMBERED]: "ko" or "en", from /lang or the language of the last question.
REMEMBERED = "language"


def from_telegram(language_code: str | None) -> str:
    """The language for Telegram's `language_code` ("en-GB" is English; anything else Korean:
    the bot's users are Korean companies, whatever their app is set to)."""
    return "en" if (language_code or "").lower().split("-")[0] == "en" else "ko"


def language_of(user_data: Mapping[str, Any] | None, language_code: str | None) -> str:
    """The language to speak to someone with this user data and Telegram language_code."""
    remembered = (user_data or {}).get(REMEMBERED)
    return remembered if remembered in LANGUAGES else from_telegram(language_code)


def remember(user_data: MutableMapping[str, Any] | None, language: str) -> None:
    """Speak `language` to this person from now on (until they write or choose another)."""
    if user_data is not None and language in LANGUAGES:
        user_data[REMEMBERED] = language


def speaks(user: User | None, user_data: Mapping[str, Any] | None) -> str:
    """The language to speak to the sender of an update, with their user data."""
    return language_of(user_data, user.language_code if user else None)


def reads(user: User | None, chat: Chat | None, user_data: Mapping[str, Any] | None) -> str:
    """The language of a reply to an admin or secretariat command: the sender's in a private
    chat; Korean in a group, which everyone in it reads."""
    if chat is not None and chat.type != Chat.PRIVATE:
        return "ko"
    return speaks(user, user_data)
