"""Async token buckets for requests-per-minute and tokens-per-minute limits.

A bucket refills continuously at `per_minute / 60` units per second and holds at most one second's
worth (`burst`, at least one unit), so the limit holds over any window, not just per calendar
minute: in any window of W seconds at most `burst + rate * W` units go out. A request asks for its
estimated tokens up front (prompt estimate + max_tokens); the estimate is corrected with the real
usage once the answer arrives (`settle`). A request larger than the burst waits for a full bucket
and then takes the bucket into debt, which later requests pay back, so the long-run rate holds.
Waiters are served first come, first served.
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable


class TokenBucket:
    def __init__(self, per_minute: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic):
        if per_minute <= 0:
            raise ValueError(f"a rate limit must be positive (got {per_minute})")
        self.rate = per_minute / 60.0
        self.burst = max(1.0, float(burst) if burst is not None else self.rate)
        self.clock = clock
        self.level = self.burst
        self.stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.burst, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def acquire(self, amount: float = 1.0) -> None:
        async with self._lock:  # one waiter at a time: first come, first served
            need = min(amount, self.burst)
            while True:
                self._refill()
                if self.level >= need - 1e-9:  # float rounding must not leave a waiter short by 1e-17
                    self.level -= amount
                    return
                await asyncio.sleep((need - self.level) / self.rate)

    def settle(self, estimated: float, actual: float) -> None:
        """Give back (or take) the difference between what a request reserved and what it used."""
        self._refill()
        self.level = min(self.burst, self.level + (estimated - actual))


class RateLimiter:
    """Both limits together; either may be None (no limit)."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None):
        self.requests = TokenBucket(rpm) if rpm else None
        self.tokens = TokenBucket(tpm) if tpm else None

    @property
    def active(self) -> bool:
        return self.requests is not None or self.tokens is not None

    async def acquire(self, estimated_tokens: float) -> None:
        if self.tokens is not None:
            await self.tokens.acquire(estimated_tokens)
        if self.requests is not None:
            await self.requests.acquire(1.0)

    def settle(self, estimated_tokens: float, actual_tokens: float) -> None:
        if self.tokens is not None:
            self.tokens.settle(estimated_tokens, actual_tokens)


def estimate_tokens(text: str) -> int:
    """A rough, tokenizer-free count (about four characters per token for English)."""
    return max(1, len(text) // 4)
