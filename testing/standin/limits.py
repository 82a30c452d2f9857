"""Flood limits for the stand-in: a sliding window and a token bucket.

Telegram documents its limits only roughly ("about 30 messages per second", "no more than one
message per second in a chat, short bursts are tolerated", "20 messages per minute in a group"),
so two shapes are offered.  A limit is an immutable description; ``make()`` returns the mutable
per-scope state.  Only accepted requests consume capacity, as on Telegram, where a 429 does not
extend the wait.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Limiter", "RateLimit", "SlidingWindow", "TokenBucket", "retry_after_seconds"]


class Limiter(Protocol):
    """Mutable state of one limit for one scope (the whole bot, or one chat)."""

    def wait_time(self, now: float) -> float:
        """Seconds until one more message would be accepted (0.0 if accepted now)."""
        ...

    def consume(self, now: float) -> None:
        """Record one accepted message."""
        ...


@dataclass(frozen=True)
class SlidingWindow:
    """At most ``count`` messages in any ``period`` seconds."""

    count: int
    period: float = 1.0

    def make(self) -> Limiter:
        return _WindowState(self.count, self.period)


@dataclass(frozen=True)
class TokenBucket:
    """``rate`` messages per second on average, with bursts of up to ``burst`` messages."""

    rate: float = 1.0
    burst: int = 10

    def make(self) -> Limiter:
        return _BucketState(self.rate, self.burst)


RateLimit = SlidingWindow | TokenBucket


class _WindowState:
    __slots__ = ("count", "period", "stamps")

    def __init__(self, count: int, period: float) -> None:
        self.count = count
        self.period = period
        # A deque keeps both trimming and appending O(1); the window never holds more than
        # ``count`` stamps because rejected requests are not recorded.
        self.stamps: deque[float] = deque()

    def _trim(self, now: float) -> None:
        horizon = now - self.period
        stamps = self.stamps
        while stamps and stamps[0] <= horizon:
            stamps.popleft()

    def wait_time(self, now: float) -> float:
        self._trim(now)
        if len(self.stamps) < self.count:
            return 0.0
        return self.stamps[0] + self.period - now

    def consume(self, now: float) -> None:
        self._trim(now)
        self.stamps.append(now)


class _BucketState:
    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.last: float | None = None

    def _refill(self, now: float) -> None:
        if self.last is not None:
            self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.rate)
        self.last = now

    def wait_time(self, now: float) -> float:
        self._refill(now)
        if self.tokens >= 1.0:
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def consume(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1.0


def retry_after_seconds(wait: float) -> int:
    """Telegram always answers whole seconds, at least 1."""
    return max(1, math.ceil(wait - 1e-9))
