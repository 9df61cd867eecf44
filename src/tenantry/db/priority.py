"""Writes first: while a request's write transaction runs, this worker's new reads wait.

Why: a worker saturated with reads runs every ready request once per turn of its event loop,
and a write needs about ten database round trips, each waiting for about two turns. Under
load a role change took 100-300 ms (p99) that way, most of it queueing behind cache hits
(bench/mix.py, issue 15). A read that arrives while a write is under way therefore waits
until no write is (reads already under way go on); the loop is then nearly idle for the
write's round trips, and the write takes a few milliseconds. A read never waits longer than
`max_wait`, so a stream of writes slows reads down but cannot stop them.

A write that waits for something other than the database (a password hash, a hashing slot,
a mail server) steps aside while it does (`stepped_aside`), so that sign-ins cannot hold up
the reads of a worker for tens of milliseconds each.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any

DEFAULT_MAX_WAIT = 0.05  # seconds a read waits for writes at most

_held: ContextVar[WritePriority | None] = ContextVar("write_priority", default=None)
# The running write request's phases (WriteTrace): [arrived, first held, seconds held, last held]
_phases: ContextVar[list[float] | None] = ContextVar("write_phases", default=None)


class WritePriority:
    """One per worker (it belongs to the Database). Not thread-safe: one event loop."""

    def __init__(self, max_wait: float = DEFAULT_MAX_WAIT) -> None:
        self.max_wait = max_wait
        self._writes = 0
        self._waiters: list[asyncio.Future[None]] = []
        self.waited = 0  # reads that waited (for tests and the bench)

    @property
    def busy(self) -> bool:
        return self._writes > 0

    @contextmanager
    def held(self) -> Iterator[None]:
        """Around a request's write transaction."""
        self._enter()
        token = _held.set(self)
        phases = _phases.get()
        entered = time.perf_counter() if phases is not None else 0.0
        try:
            yield
        finally:
            _held.reset(token)
            self._leave()
            if phases is not None:
                _note_held(phases, entered, time.perf_counter())

    async def wait(self) -> None:
        """A read's turn: at once when no write is under way, else when none is (or after
        max_wait)."""
        if not self._writes:
            return
        self.waited += 1
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            with suppress(TimeoutError):
                async with asyncio.timeout(self.max_wait):
                    await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _enter(self) -> None:
        self._writes += 1

    def _leave(self) -> None:
        self._writes -= 1
        if self._writes == 0:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)


@contextmanager
def stepped_aside() -> Iterator[None]:
    """Around a wait of a write that is not a database round trip: reads may run meanwhile."""
    priority = _held.get()
    if priority is None:
        yield
        return
    token = _held.set(None)
    priority._leave()
    try:
        yield
    finally:
        priority._enter()
        _held.reset(token)


def _note_held(phases: list[float], entered: float, left: float) -> None:
    if not phases[1]:
        phases[1] = entered
    phases[2] += left - entered
    phases[3] = left


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class WriteTrace:
    """Where a worker's write requests spend their time, for bench/mix.py (issue 15: a role
    change's p99 under saturating reads). Per request, in ms: the whole of it (from the app's
    first look to the last byte handed to the server), before its write transaction (body,
    authentication, checks), in it (statements, commit), and after it (the answer rendered
    and sent). What the client measures beyond `total` was spent before the app saw the
    request or after it let go: the socket and the event loop's queue. Opt-in (the bench sets
    TENANTRY_CACHE_STATS_DIR); the last `keep` requests."""

    def __init__(self, keep: int = 100_000) -> None:
        self.records: deque[tuple[float, float, float, float]] = deque(maxlen=keep)

    async def around(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        phases = [time.perf_counter(), 0.0, 0.0, 0.0]
        token = _phases.set(phases)

        async def timed(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self._done(phases, time.perf_counter())

        try:
            await app(scope, receive, timed)
        finally:
            _phases.reset(token)

    def _done(self, phases: list[float], end: float) -> None:
        arrived, first, held, last = phases
        if not first:  # no write transaction (refused before it, or a sign-in's hash only)
            return
        ms = 1000.0
        self.records.append(
            (ms * (end - arrived), ms * (first - arrived), ms * held, ms * (end - last))
        )

    def dump(self) -> list[list[float]]:
        """[total, before, held, after] per request, in ms."""
        return [[round(x, 3) for x in record] for record in self.records]
