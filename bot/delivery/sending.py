"""Every Bot API call the bot makes goes through here: Telegram's flood limits kept, and a
call that fails for a passing reason (5xx, network, timeout, 429) tried again with backoff.

A call that still fails when its window is over raises as before; the caller decides what
that means (a question's reply is noted for the secretariat, a follow-up post is retried
later by bot/delivery/posting.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import nullcontext
from functools import partial
from typing import Any

from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import AIORateLimiter

log = logging.getLogger(__name__)

# The first wait after a failure, doubled each time up to the longest.
FIRST_BACKOFF_S = 0.5
LONGEST_BACKOFF_S = 8.0
# Telegram's limit for a group: 20 messages in any minute. Counted here from when a message
# is handed to Telegram, which counts from when it takes it, a little later: the window is
# kept a second longer so that the two never disagree.
GROUP_MESSAGES_PER_MINUTE = 20
GROUP_WINDOW_S = 61.0
# The bot's rate likewise: a message is counted when handed over, and Telegram counts it when
# it arrives, up to a stall of the event loop later (a burst of 1,000 replies, paced at 28 in
# any one second, arrived 31 in one second twice in session 11's CI runs). Counted over 1.2 s,
# arrivals would have to bunch by a fifth of a second to exceed the limit.
PACE_WINDOW_S = 1.2


class Pacer:
    """Spaces messages evenly, `per_second` a second for the whole bot, shared by its
    `processes`: together they stay under Telegram's limit."""

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self.processes = 1
        self._next = 0.0
        self._sent: deque[list[float]] = deque()  # when each message of the last PACE_WINDOW_S went

    @property
    def share(self) -> float:
        """This process's messages a second. Evenly paced, a process sends at most its rate
        + 1 in any one second (the windows of the processes are not in step): n of them
        n·(share + 1), held to what one process alone may send, per_second + 1."""
        return max((self.per_second + 1) / self.processes - 1, 0.5)

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + 1 / self.share
        if slot > now:
            await asyncio.sleep(slot - now)
        # Evenly spaced slots still bunch when the event loop stalls (a long answer): the
        # senders due meanwhile wake together, on top of the next second's own. Never more
        # than the share in any PACE_WINDOW_S, counted when sent.
        await _within_window(self._sent, self.share, PACE_WINDOW_S)


class GroupPacer:
    """Keeps each group's limit of `per_window` messages in any `window` seconds, shared by
    the bot's `processes`: each sends at most its whole share of it in any window, so that
    together they never send more than the limit (two processes: 10 each)."""

    def __init__(self, per_window: int = GROUP_MESSAGES_PER_MINUTE,
                 window: float = GROUP_WINDOW_S) -> None:
        self.per_window = per_window
        self.window = window
        self.processes = 1
        self._sent: dict[int | str, deque[list[float]]] = {}

    @property
    def share(self) -> int:
        return max(1, self.per_window // self.processes)

    async def wait(self, group: int | str) -> list[float]:
        """Until this process may send one more message to `group`; counted as sent now.
        Returns the count's time, which the caller moves to when the call came back: Telegram
        took the message at some moment in between, and the window must hold it until then."""
        return await _within_window(
            self._sent.setdefault(group, deque()), self.share, self.window,
            lambda wait: log.info("group %s has had this process's share of its limit (%d of "
                                  "%d messages a minute); the next goes in %.0f s", group,
                                  self.share, self.per_window, wait))


async def _within_window(sent: deque[list[float]], most: float, window: float,
                         first_wait: Callable[[float], None] = lambda wait: None
                         ) -> list[float]:
    """Until fewer than `most` of the times in `sent` are within the last `window` seconds
    (`first_wait` is told how long the first wait is, if any); then now is counted in it, as
    a one-item list that the caller may move later (never earlier)."""
    waited = False
    while True:
        now = time.monotonic()
        while sent and sent[0][0] <= now - window:
            sent.popleft()
        if len(sent) < most:
            stamp = [now]
            sent.append(stamp)  # no await since the count: waiters never overtake it
            return stamp
        wait = sent[0][0] + window - now
        if not waited:
            first_wait(wait)
            waited = True
        await asyncio.sleep(wait)


class RetryingRateLimiter(AIORateLimiter):
    """AIORateLimiter (retries after a 429's retry_after) with the whole bot's rate kept by
    a Pacer and each group's by a GroupPacer, both shared by the bot's processes, and
    transient failures retried until `window` seconds have passed since the first attempt.

    BadRequest and Forbidden are not retried: the same request would fail the same way.
    A timeout is retried although Telegram may have sent the message: a rare duplicate is
    better than a reply that never arrives.
    """

    def __init__(self, window: float, throttle: bool = True, per_second: float = 28,
                 in_flight: int = 12) -> None:
        # AIORateLimiter keeps neither limit: its group limiter is one process's (two sent a
        # group 40 messages a minute), and bursts 20 at once where 30 a second are allowed.
        super().__init__(overall_max_rate=0, group_max_rate=0, max_retries=10)
        if throttle:
            # One message every 1/per_second s rather than 30 at once each second (bot/app.py).
            self.pacer: Pacer | None = Pacer(per_second)
            self.groups: GroupPacer | None = GroupPacer()
        else:  # measuring the bot's own throughput: no throttling, failures still retried
            self.pacer = None
            self.groups = None
        self.window = window
        # Paced calls under way at once, fewer than the connections: a call paced and then
        # kept waiting for a connection goes out together with the ones paced after it
        # (a burst of 1,000 replies reached Telegram 31 in one second, at 28 paced).
        self._in_flight = asyncio.Semaphore(in_flight)
        # Whether to go on retrying: bot/app.py makes it "while the application runs", so that
        # stopping never waits out a retry window (a stop waits for the handlers).
        self.keep_trying: Callable[[], bool] = lambda: True

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        deadline = time.monotonic() + self.window
        backoff = FIRST_BACKOFF_S
        group = _group_of(data.get("chat_id"))
        call = partial(super().process_request, callback, args, kwargs, endpoint, data,
                       rate_limit_args)
        while True:
            try:
                return await self._attempt(group, data.get("chat_id") is not None, call)
            except BadRequest:
                raise
            except (NetworkError, RetryAfter) as exc:
                wait = _retry_after(exc) + 0.1 if isinstance(exc, RetryAfter) else backoff
                if time.monotonic() + wait > deadline or not self.keep_trying():
                    raise
                log.info("%s to chat %s failed (%s); trying again in %.1f s", endpoint,
                         data.get("chat_id"), exc, wait)
                await self._pause(wait)
                backoff = min(backoff * 2, LONGEST_BACKOFF_S)

    async def _attempt(self, group: int | str | None, to_chat: bool,
                       call: Callable[[], Awaitable[Any]]) -> Any:
        """One try of a call (to a chat, or to a group: `group`), within the group's limit and
        the bot's rate."""
        sent_to_group = None
        if self.groups is not None and group is not None:
            # Waited for outside the calls under way: a group's minute holds none of them.
            sent_to_group = await self.groups.wait(group)
        pacer = self.pacer if to_chat else None  # calls to a chat count; AIORateLimiter did too
        try:
            async with self._in_flight if pacer is not None else nullcontext():
                if pacer is not None:
                    await pacer.wait()
                return await call()
        finally:
            if sent_to_group is not None:
                sent_to_group[0] = time.monotonic()

    def share(self, processes: int) -> None:
        """`processes` processes of this bot are running: each sends its share of the rate."""
        if self.pacer is None or self.pacer.processes == processes:
            return
        self.pacer.processes = max(1, processes)
        if self.groups is not None:
            self.groups.processes = max(1, processes)
        log.info("%d bot processes share Telegram's limit: this one sends up to %.1f "
                 "messages a second, and %d a minute to a group", processes, self.pacer.share,
                 self.groups.share if self.groups is not None else 0)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but give up at once when the application stops."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0 and self.keep_trying():
            await asyncio.sleep(min(left, 0.25))


def _group_of(chat_id: object) -> int | str | None:
    """The group a call goes to, as Telegram tells them from private chats: a negative id
    (or a @channel name); None for a private chat or no chat."""
    if isinstance(chat_id, str) and not chat_id.lstrip("-").isdigit():
        return chat_id
    try:
        number = int(chat_id)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return number if number < 0 else None


def _retry_after(exc: RetryAfter) -> float:
    value = exc.retry_after  # seconds, or a timedelta (PTB_TIMEDELTA)
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
