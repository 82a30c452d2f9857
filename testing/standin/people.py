"""The test side of the stand-in: users and groups, and what they do (send, edit, press)."""


import time
from collections.abc import Iterable

from .markup import auto_entities, utf16_len
from .records import (
    BotMessage,
    Group,
    User,
    UserMessage,
)
from .state import (
    JSON,
    MESSAGE_LIMIT,
    ChatRef,
    _Chat,
    _chat_id_of,
    _Query,
    _UserState,
)


class People:
    """Setting up users and groups and acting as them; mixed into BotApiStandIn."""

    # ------------------------------------------------------------------ test side: setup

    def user(
        self,
        id: int,
        first_name: str,
        username: str | None = None,
        last_name: str | None = None,
        *,
        language_code: str | None = "ko",
        started: bool = True,
    ) -> User:
        """Register a user (and their private chat with the bot).

        Their app speaks Korean unless ``language_code`` says otherwise (``"en"``: English).
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
