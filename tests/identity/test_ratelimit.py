"""Sign-in rate limits: per worker in memory, shared across workers through real Redis."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import pytest

from tenantry.identity.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter

REDIS_URL = os.environ.get("TENANTRY_TEST_REDIS_URL", "")
IN_CI = os.environ.get("CI", "").lower() == "true"


async def _redis_limiter() -> RedisRateLimiter:
    if not REDIS_URL:
        if IN_CI:
            pytest.fail("CI=true but TENANTRY_TEST_REDIS_URL is not set")
        pytest.skip("Redis not configured (set TENANTRY_TEST_REDIS_URL)")
    limiter = RedisRateLimiter(REDIS_URL, prefix=f"tenantry-test:{secrets.token_hex(4)}:")
    try:
        await limiter.hit("probe", 1, 60)
    except Exception as exc:  # unreachable server
        await limiter.close()
        if IN_CI:
            pytest.fail(f"Redis at TENANTRY_TEST_REDIS_URL unreachable: {exc}")
        pytest.skip("Redis unreachable")
    return limiter


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    made: RateLimiter = MemoryRateLimiter() if request.param == "memory" else await _redis_limiter()
    yield made
    await made.close()


async def test_allows_up_to_the_limit_then_refuses_with_a_retry_time(limiter: RateLimiter) -> None:
    verdicts = [await limiter.hit("login:acct:a", 3, 60) for _ in range(5)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False]
    assert all(1 <= v.retry_after <= 61 for v in verdicts[3:])
    assert [v.first_refusal for v in verdicts] == [False, False, False, True, False]
    other = await limiter.hit("login:acct:b", 3, 60)
    assert other.allowed  # keys are counted apart


async def test_redis_counts_are_shared_between_workers() -> None:
    first = await _redis_limiter()
    prefix = first._prefix  # two limiters on one Redis stand for two workers
    second = RedisRateLimiter(REDIS_URL, prefix=prefix)
    try:
        assert (await first.hit("login:ip:1.2.3.4", 2, 60)).allowed
        assert (await second.hit("login:ip:1.2.3.4", 2, 60)).allowed
        assert not (await first.hit("login:ip:1.2.3.4", 2, 60)).allowed
        assert not (await second.hit("login:ip:1.2.3.4", 2, 60)).allowed
    finally:
        await first.close()
        await second.close()


async def test_memory_limiter_stays_bounded() -> None:
    limiter = MemoryRateLimiter(max_keys=100)
    for i in range(1000):
        await limiter.hit(f"k{i}", 5, 60)
    assert len(limiter._windows) <= 100


async def test_window_starts_at_the_first_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst across a clock minute boundary must not get twice the budget."""
    clock = [1000.0 * 60 - 0.5]  # half a second before a minute boundary
    monkeypatch.setattr("tenantry.identity.ratelimit.time.monotonic", lambda: clock[0])
    limiter = MemoryRateLimiter()
    assert (await limiter.hit("k", 2, 60)).allowed
    clock[0] += 1.0  # now past the boundary
    assert (await limiter.hit("k", 2, 60)).allowed
    refused = await limiter.hit("k", 2, 60)
    assert not refused.allowed and refused.retry_after == 59
    clock[0] += 59.0
    assert (await limiter.hit("k", 2, 60)).allowed  # the key's own window has ended
