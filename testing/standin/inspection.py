"""The test side of the stand-in: faults to inject, and what a test inspects afterwards."""


import asyncio
import time
from collections.abc import Callable
from typing import Any

import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.web

from .records import (
    BotMessage,
    Rejection,
    RequestRecord,
    StoredFile,
)
from .state import (
    JSON,
    ApiError,
    ChatRef,
    _chat_id_of,
    _Fault,
    _Hold,
)

# How long a test waits for what the bot does by default: a ceiling, not a pace (a wait returns
# as soon as the event happens). A reload rebuilds the index, which took over 15 s on a
# machine running two test workers and more beside them.
WAIT_CEILING = 60.0


class Inspection:
    """Failing, holding and releasing methods; what was sent, called and refused. Mixed into
    BotApiStandIn."""

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

    async def _wait_for_release(self, hold: _Hold, handler: tornado.web.RequestHandler) -> None:
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
        timeout: float = WAIT_CEILING,
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
        self, condition: Callable[[], Any], timeout: float = WAIT_CEILING, poll: float = 0.02
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
