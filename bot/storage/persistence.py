"""python-telegram-bot persistence in the project's database, as JSON (no pickle file).

What survives a restart: the states of persistent conversations (the eligibility check) and
user_data / chat_data, one row each in the `bot_state` table. bot_data is not persisted (it
holds the running services) and neither is callback data.

python-telegram-bot hands over the data it has seen change every `update_interval` seconds
and once more when the application shuts down; rows are written only when their JSON differs
from what is stored, in one transaction per round. Values that are not JSON (a pending admin
upload, say) are left out: they live only as long as the process.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from telegram import Update
from telegram.ext import (
    Application,
    BaseHandler,
    BasePersistence,
    ConversationHandler,
    PersistenceInput,
)

from bot.storage.database import Database, upgrade_schema
from bot.storage.records import bot_states, bot_states_of, save_bot_states

log = logging.getLogger(__name__)

USER = "user"
CHAT = "chat"
CONVERSATION = "conversation:"

Key = tuple[str, str]
ConversationKey = tuple[int | str, ...]
ConversationDict = dict[ConversationKey, object]


def encode_data(data: dict[Any, Any]) -> str | None:
    """user_data or chat_data as JSON, keeping only the entries JSON can hold; None if none."""
    kept = {}
    for name, value in data.items():
        if not isinstance(name, str):
            continue
        try:
            json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):
            continue  # lives in memory only
        kept[name] = value
    return json.dumps(kept, ensure_ascii=False, sort_keys=True) if kept else None


class DatabasePersistence(BasePersistence[dict, dict, dict]):
    """Conversation states, user_data and chat_data in the `bot_state` table."""

    def __init__(self, database: Database, update_interval: float = 10) -> None:
        super().__init__(
            store_data=PersistenceInput(bot_data=False, chat_data=True, user_data=True,
                                        callback_data=False),
            update_interval=update_interval,
        )
        self.database = database
        self._loaded: dict[Key, str] | None = None
        self._load_lock = asyncio.Lock()
        # What the database holds (as far as this process wrote or read it) and what it will.
        self._stored: dict[Key, str] = {}
        self._pending: dict[Key, str | None] = {}
        self._writing: dict[Key, str | None] = {}  # the round being written now
        self._write_lock = asyncio.Lock()

    # --- loading --------------------------------------------------------------------------

    async def _rows(self) -> dict[Key, str]:
        """Every stored row, read once when the application initializes."""
        async with self._load_lock:
            if self._loaded is None:
                self._loaded = await self._read()
                self._stored = dict(self._loaded)
            return self._loaded

    async def _read(self) -> dict[Key, str]:
        try:
            # The application loads its persistence before post_init brings the schema up to
            # date; on a new database the table must exist first.
            await asyncio.to_thread(upgrade_schema, self.database.url)
            async with self.database.session() as session:
                rows = await bot_states(session)
        except (SQLAlchemyError, OSError, TimeoutError):
            log.exception("persisted conversations not loaded; starting without them")
            return {}
        return {(row.kind, row.key): row.data for row in rows}

    async def _data(self, kind: str) -> defaultdict[int, dict]:
        found: defaultdict[int, dict] = defaultdict(dict)
        for (row_kind, key), data in (await self._rows()).items():
            if row_kind == kind:
                try:
                    found[int(key)] = json.loads(data)
                except ValueError:
                    log.warning("unreadable %s data for %s dropped", kind, key)
        return found

    async def get_user_data(self) -> dict[int, dict]:
        return await self._data(USER)

    async def get_chat_data(self) -> dict[int, dict]:
        return await self._data(CHAT)

    async def get_bot_data(self) -> dict:
        return {}

    async def get_callback_data(self) -> None:
        return None

    async def get_conversations(self, name: str) -> ConversationDict:
        conversations: ConversationDict = {}
        for (kind, key), data in (await self._rows()).items():
            if kind == CONVERSATION + name:
                try:
                    conversations[tuple(json.loads(key))] = json.loads(data)
                except (TypeError, ValueError):
                    log.warning("unreadable state of conversation %s %s dropped", name, key)
        return conversations

    # --- several processes -----------------------------------------------------------------

    async def load_current(self, application: Application, update: Update) -> None:
        """Before an update a conversation may take: take the conversation states and user
        data of its chat and user that another process changed, so that a running /check
        continues in whichever process gets the next step (bot/delivery/inbox.py writes them back
        after it). User data used outside a persistent conversation is not shared."""
        user, chat = update.effective_user, update.effective_chat
        if user is None:
            return
        wanted: dict[Key, ConversationHandler | None] = {(USER, str(user.id)): None}
        for handler in conversations(application):
            key = conversation_key(handler, chat.id if chat else None, user.id)
            if handler.persistent and key is not None:
                wanted[(CONVERSATION + handler.name, json.dumps(list(key)))] = handler
        try:
            async with self.database.session() as session:
                stored = await bot_states_of(session, list(wanted))
        except (SQLAlchemyError, OSError, TimeoutError):
            return  # go on with what this process holds
        for row, handler in wanted.items():
            data = stored.get(row)
            if data == self._stored.get(row) or row in self._pending or row in self._writing:
                continue  # nobody else changed it, or this process has newer data to write
            try:
                value = json.loads(data) if data is not None else None
            except ValueError:
                continue
            if data is None:
                self._stored.pop(row, None)
            else:
                self._stored[row] = data
            if handler is None:
                _replace_user_data(application.user_data[user.id], value or {})
            else:
                key = tuple(json.loads(row[1]))
                states = handler._conversations  # PTB offers no public setter
                if value is None:
                    states.pop(key, None)
                else:
                    states.update_no_track({key: value})

    # --- writing --------------------------------------------------------------------------

    async def update_conversation(self, name: str, key: ConversationKey,
                                  new_state: object | None) -> None:
        row = (CONVERSATION + name, json.dumps(list(key)))
        if new_state is None:
            await self._stage(row, None)
            return
        try:
            state = json.dumps(new_state)
        except (TypeError, ValueError):
            log.warning("state %r of conversation %s is not JSON; not persisted", new_state, name)
            return
        await self._stage(row, state)

    async def update_user_data(self, user_id: int, data: dict) -> None:
        await self._stage((USER, str(user_id)), encode_data(data))

    async def update_chat_data(self, chat_id: int, data: dict) -> None:
        await self._stage((CHAT, str(chat_id)), encode_data(data))

    async def drop_user_data(self, user_id: int) -> None:
        await self._stage((USER, str(user_id)), None)

    async def drop_chat_data(self, chat_id: int) -> None:
        await self._stage((CHAT, str(chat_id)), None)

    async def update_bot_data(self, data: dict) -> None:
        return None

    async def update_callback_data(self, data: object) -> None:
        return None

    async def refresh_user_data(self, user_id: int, user_data: dict) -> None:
        return None  # this process holds the current data; nothing to read back

    async def refresh_chat_data(self, chat_id: int, chat_data: dict) -> None:
        return None

    async def refresh_bot_data(self, bot_data: dict) -> None:
        return None

    async def flush(self) -> None:
        """At shutdown: write whatever is still pending."""
        await self._write()

    async def _stage(self, row: Key, data: str | None) -> None:
        if row not in self._pending and self._stored.get(row) == data:
            return  # unchanged: most users' data, most of the time
        self._pending[row] = data
        await self._write()

    async def _write(self) -> None:
        """Write everything pending in one transaction. python-telegram-bot stages a whole
        round at once, so the first call writes one row and the next the rest of the round."""
        async with self._write_lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, {}
            self._writing = batch
            try:
                async with self.database.session() as session:
                    await save_bot_states(session, batch)
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                log.warning("persisted state not written (%s); retrying on the next round",
                            type(exc).__name__)
                for row, data in batch.items():
                    self._pending.setdefault(row, data)
                return
            finally:
                self._writing = {}
            for row, data in batch.items():
                if data is None:
                    self._stored.pop(row, None)
                else:
                    self._stored[row] = data


def conversation_key(handler: ConversationHandler, chat_id: int | None, user_id: int
                     ) -> tuple[int, ...] | None:
    """The key python-telegram-bot files a conversation's state under for this chat and user
    (None for one kept per message, or per chat without a chat)."""
    if handler.per_message:
        return None
    key = []
    if handler.per_chat:
        if chat_id is None:
            return None
        key.append(chat_id)
    if handler.per_user:
        key.append(user_id)
    return tuple(key)


def _replace_user_data(data: dict, stored: dict) -> None:
    """Make the JSON part of `data` what is stored; values only this process holds stay."""
    for name in [n for n in data if isinstance(n, str) and n not in stored]:
        try:
            json.dumps(data[name], ensure_ascii=False)
        except (TypeError, ValueError):
            continue
        del data[name]
    data.update(stored)


def concerns_conversation(application: Application, update: Update) -> bool:
    """Whether a persistent conversation could take this update in some state: only then
    must its state be shared with other processes (a plain question never is, and reading
    the state for every question cost a quarter of the bot's throughput)."""
    return any(handler.persistent and any(step.check_update(update)
                                          for step in conversation_steps(handler))
               for handler in conversations(application))


def conversations(application: Application) -> list[ConversationHandler]:
    return [handler for group in application.handlers.values() for handler in group
            if isinstance(handler, ConversationHandler)]


def conversation_steps(handler: ConversationHandler) -> list[BaseHandler]:
    """What a conversation may take in some state: its entry points, fallbacks and states'
    handlers. Not the timeout state's, which takes any update when the conversation times
    out (an upload's), and is no step the user takes."""
    return [*handler.entry_points, *handler.fallbacks,
            *(step for state, steps in handler.states.items()
              if state != ConversationHandler.TIMEOUT for step in steps)]
