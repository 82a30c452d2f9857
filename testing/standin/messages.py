"""Bot API methods on messages and chats: send, edit, delete, answer a button, media, files,
chats and members."""


import mimetypes
import time
from collections.abc import Callable
from typing import Any

import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.web

from .records import (
    CallbackAnswer,
    ChatAction,
    StoredFile,
)
from .state import (
    _CHAT_ACTIONS,
    _NOT_MODIFIED,
    _QUERY_INVALID,
    DOWNLOAD_LIMIT,
    JSON,
    UPLOAD_LIMIT,
    ApiError,
    _Params,
)


class MessageMethods:
    """sendMessage and the other methods on messages and chats; mixed into BotApiStandIn."""

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
