"""Fixed-window rate limits for sign-in: in memory per worker, or shared through Redis."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # seconds until the window resets (0 when allowed)
    # The window's first refusal: worth an audit event, where its followers would flood the log.
    first_refusal: bool = False


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> Verdict: ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    """Per-process counters. Each key's window starts at its first hit (not at a clock
    boundary, which would let a burst straddling it through twice). Expired windows are
    dropped as the table grows, so memory stays bounded by the keys seen within one window."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._windows: dict[str, tuple[float, int, int]] = {}  # key -> (start, count, window)
        self._max_keys = max_keys

    async def hit(self, key: str, limit: int, window_seconds: int) -> Verdict:
        now = time.monotonic()
        start, count, _ = self._windows.get(key, (now, 0, window_seconds))
        if now - start >= window_seconds:
            start, count = now, 0
        if len(self._windows) >= self._max_keys and key not in self._windows:
            self._drop_expired(now)
        self._windows[key] = (start, count + 1, window_seconds)
        if count + 1 <= limit:
            return Verdict(True, 0)
        retry_after = max(1, math.ceil(start + window_seconds - now))
        return Verdict(False, retry_after, first_refusal=count == limit)

    def _drop_expired(self, now: float) -> None:
        for k in [k for k, (s, _, w) in self._windows.items() if now - s >= w]:
            del self._windows[k]
        if len(self._windows) >= self._max_keys:  # all live: forget the oldest half
            for k in list(self._windows)[: self._max_keys // 2]:
                del self._windows[k]

    async def close(self) -> None:
        self._windows.clear()


class RedisRateLimiter:
    """Counters shared by every worker and instance. The window starts at a key's first hit:
    SET NX with the expiry, then INCR, in one MULTI."""

    def __init__(self, url: str, prefix: str = "tenantry:rl:") -> None:
        self._redis: Redis = Redis.from_url(url)
        self._prefix = prefix

    async def hit(self, key: str, limit: int, window_seconds: int) -> Verdict:
        name = f"{self._prefix}{key}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(name, 0, ex=window_seconds, nx=True)
            pipe.incr(name)
            pipe.ttl(name)
            _, count, ttl = await pipe.execute()
        if int(count) <= limit:
            return Verdict(True, 0)
        return Verdict(False, max(1, int(ttl)), first_refusal=int(count) == limit + 1)

    async def close(self) -> None:
        await self._redis.aclose()


def make_limiter(redis_url: str | None) -> RateLimiter:
    return RedisRateLimiter(redis_url) if redis_url else MemoryRateLimiter()
