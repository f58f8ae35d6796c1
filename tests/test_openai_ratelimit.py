"""The token buckets behind rpm/tpm, on a virtual clock: bursts, refill, debt, settling."""
import asyncio

import pytest

from generators.ratelimit import RateLimiter, TokenBucket


class VirtualClock:
    """asyncio.sleep advances this clock instead of waiting."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run_with_clock(coro_fn, clock, monkeypatch):
    real_sleep = asyncio.sleep

    async def fake_sleep(s):
        clock.now += s
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return asyncio.run(coro_fn())


def test_bucket_allows_a_burst_then_the_rate(monkeypatch):
    clock = VirtualClock()
    bucket = TokenBucket(per_minute=600, clock=clock)  # 10/s, burst 10
    times = []

    async def main():
        for _ in range(30):
            await bucket.acquire(1)
            times.append(clock.now)

    run_with_clock(main, clock, monkeypatch)
    assert times[:10] == [0.0] * 10
    assert times[-1] == pytest.approx(2.0)  # 20 more at 10/s
    for t0 in times:  # any 1-second window holds at most burst + rate requests
        assert sum(1 for t in times if t0 <= t < t0 + 1.0) <= 20


def test_large_request_takes_the_bucket_into_debt_and_settle_corrects(monkeypatch):
    clock = VirtualClock()
    bucket = TokenBucket(per_minute=6000, clock=clock)  # 100 tokens/s, burst 100
    stamps = []

    async def main():
        await bucket.acquire(250)  # more than the burst: waits for a full bucket, then owes 150
        stamps.append(clock.now)
        await bucket.acquire(50)  # pays the debt first: 150 + 50 tokens at 100/s
        stamps.append(clock.now)
        bucket.settle(estimated=50, actual=10)  # used less than reserved: 40 back
        await bucket.acquire(40)
        stamps.append(clock.now)

    run_with_clock(main, clock, monkeypatch)
    assert stamps[0] == 0.0
    assert stamps[1] == pytest.approx(2.0)
    assert stamps[2] == pytest.approx(2.0)


def test_limiter_without_limits_is_inactive():
    assert not RateLimiter(None, None).active
    assert RateLimiter(60, None).active and RateLimiter(None, 1000).active
    with pytest.raises(ValueError):
        TokenBucket(0)
