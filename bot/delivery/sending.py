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
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import AIORateLimiter

log = logging.getLogger(__name__)

# The first wait after a failure, doubled each time up to the longest.
FIRST_BACKOFF_S = 0.5
LONGEST_BACKOFF_S = 8.0


class Pacer:
    """Spaces messages evenly, `per_second` a second for the whole bot, shared by its
    `processes`: together they stay under Telegram's limit."""

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self.processes = 1
        self._next = 0.0

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


class RetryingRateLimiter(AIORateLimiter):
    """AIORateLimiter (a group's limit, retries after a 429's retry_after) with the whole
    bot's rate kept by a Pacer that the bot's processes share, and transient failures retried
    until `window` seconds have passed since the first attempt.

    BadRequest and Forbidden are not retried: the same request would fail the same way.
    A timeout is retried although Telegram may have sent the message: a rare duplicate is
    better than a reply that never arrives.
    """

    def __init__(self, window: float, throttle: bool = True, per_second: float = 28) -> None:
        if throttle:
            # One message every 1/per_second s rather than 30 at once each second (bot/app.py);
            # the pacer does that, AIORateLimiter keeps each group's limit.
            super().__init__(overall_max_rate=0, max_retries=10)
            self.pacer: Pacer | None = Pacer(per_second)
        else:  # measuring the bot's own throughput: no throttling, failures still retried
            super().__init__(overall_max_rate=0, group_max_rate=0, max_retries=10)
            self.pacer = None
        self.window = window
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
        while True:
            if self.pacer is not None and data.get("chat_id") is not None:
                await self.pacer.wait()  # calls to a chat count; AIORateLimiter did the same
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data,
                                                     rate_limit_args)
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

    def share(self, processes: int) -> None:
        """`processes` processes of this bot are running: each sends its share of the rate."""
        if self.pacer is None or self.pacer.processes == processes:
            return
        self.pacer.processes = max(1, processes)
        log.info("%d bot processes share Telegram's limit: this one sends up to %.1f "
                 "messages a second", processes, self.pacer.share)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but give up at once when the application stops."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0 and self.keep_trying():
            await asyncio.sleep(min(left, 0.25))


def _retry_after(exc: RetryAfter) -> float:
    value = exc.retry_after  # seconds, or a timedelta (PTB_TIMEDELTA)
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
