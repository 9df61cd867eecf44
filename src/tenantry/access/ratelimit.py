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


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> Verdict: ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    """Per-process counters. Old windows are dropped as the table grows, so memory stays
    bounded by the number of distinct keys seen within one window."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._windows: dict[str, tuple[int, int]] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, limit: int, window_seconds: int) -> Verdict:
        now = time.monotonic()
        window = int(now // window_seconds)
        start, count = self._windows.get(key, (window, 0))
        if start != window:
            count = 0
        count += 1
        if len(self._windows) >= self._max_keys and key not in self._windows:
            self._drop_stale(window)
        self._windows[key] = (window, count)
        if count <= limit:
            return Verdict(True, 0)
        return Verdict(False, max(1, math.ceil((window + 1) * window_seconds - now)))

    def _drop_stale(self, window: int) -> None:
        stale = [k for k, (w, _) in self._windows.items() if w != window]
        for k in stale:
            del self._windows[k]
        if len(self._windows) >= self._max_keys:  # all current: forget the oldest half
            for k in list(self._windows)[: self._max_keys // 2]:
                del self._windows[k]

    async def close(self) -> None:
        self._windows.clear()


class RedisRateLimiter:
    """Counters shared by every worker and instance: INCR with an expiry, in one MULTI."""

    def __init__(self, url: str, prefix: str = "tenantry:rl:") -> None:
        self._redis: Redis = Redis.from_url(url)
        self._prefix = prefix

    async def hit(self, key: str, limit: int, window_seconds: int) -> Verdict:
        window = int(time.time() // window_seconds)
        name = f"{self._prefix}{key}:{window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window_seconds + 1)
            count, _ = await pipe.execute()
        if int(count) <= limit:
            return Verdict(True, 0)
        return Verdict(False, max(1, math.ceil((window + 1) * window_seconds - time.time())))

    async def close(self) -> None:
        await self._redis.aclose()


def make_limiter(redis_url: str | None) -> RateLimiter:
    return RedisRateLimiter(redis_url) if redis_url else MemoryRateLimiter()
