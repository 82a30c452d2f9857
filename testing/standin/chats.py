"""The stand-in's own bookkeeping: updates queued, users' messages stored, files kept."""


import asyncio
import mimetypes
import time
from collections.abc import Callable
from typing import Any

from .markup import auto_entities
from .records import (
    BotMessage,
    StoredFile,
    User,
    UserMessage,
)
from .state import (
    _MEDIA_FOLDERS,
    JSON,
    ChatRef,
    _Chat,
    _chat_id_of,
    _UserState,
    _without_reply,
)


class Chats:
    """The queue of updates and the messages and files of users and chats; mixed into
    BotApiStandIn."""

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
