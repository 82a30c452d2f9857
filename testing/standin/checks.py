"""What the stand-in checks of a bot's call as Telegram does (target chat, rate, text and
entities, reply markup, reply target), and the bot's messages it stores."""


import json
import re
import time
from typing import Any

from .limits import Limiter, retry_after_seconds
from .markup import EntityParseError, parse_text, trim_text, utf16_len
from .records import (
    BotMessage,
    StoredFile,
)
from .state import (
    _BUTTON_ACTIONS,
    CALLBACK_DATA_LIMIT,
    CAPTION_LIMIT,
    JSON,
    MESSAGE_LIMIT,
    ApiError,
    _Chat,
    _Params,
    _without_reply,
)


class Checks:
    """Telegram's checks of a call, and the bot's messages; mixed into BotApiStandIn."""

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
