"""Token-use bookkeeping (identity/usage.py): a reading request only queues its token's use;
the process's recorder writes the queue in one transaction of set-based statements, which
audits each token's first use exactly once, slides sessions, invalidates no cached answer,
and never makes a request wait for, or fail on, a write."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, text, update

from tenantry.app import create_app
from tenantry.clock import utcnow
from tenantry.config import Settings
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent, Token, User
from tenantry.identity.principals import Principal, authenticate
from tenantry.identity.tokens import TOUCH_INTERVAL, digest, is_live
from tenantry.identity.usage import (
    FIRST_USE,
    MAX_ATTEMPTS,
    URGENT,
    recorder,
    touch,
)
from tests.faces.native.test_auth import PASSWORD, login, with_password
from tests.factories import World, bearer

SELF = "/v1/users/self"
WRITES = ("INSERT", "UPDATE", "DELETE", "BEGIN IMMEDIATE")


@contextmanager
def sql(database: Database) -> Iterator[list[str]]:
    """The SQL the database is sent while the block runs (an executemany counts once)."""
    seen: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", remember)
    try:
        yield seen
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", remember)


@contextmanager
def commits(database: Database) -> Iterator[list[int]]:
    """One entry per transaction the database commits while the block runs."""
    seen: list[int] = []

    def remember(_conn: Any) -> None:
        seen.append(1)

    event.listen(database.engine.sync_engine, "commit", remember)
    try:
        yield seen
    finally:
        event.remove(database.engine.sync_engine, "commit", remember)


def writes(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith(WRITES)]


async def tokens_of(database: Database, secrets: list[str]) -> list[Token]:
    async with database.transaction(write=False) as db:
        digests = [digest(s) for s in secrets]
        found = {
            t.digest: t for t in await db.scalars(select(Token).where(Token.digest.in_(digests)))
        }
    return [found[d] for d in digests]


async def first_uses(database: Database) -> list[AuditEvent]:
    async with database.transaction(write=False) as db:
        query = select(AuditEvent).where(AuditEvent.action == FIRST_USE).order_by(AuditEvent.id)
        return list(await db.scalars(query))


async def seen_at(database: Database, user_id: str) -> datetime | None:
    async with database.transaction(write=False) as db:
        return await db.scalar(select(User.seen_at).where(User.id == user_id))


async def caller(database: Database, secret: str) -> Principal:
    """The principal a reading request would load (detached, as the cache keeps it)."""
    async with database.transaction(write=False) as db:
        principal = await authenticate(db, secret)
        db.expunge_all()
    return principal


async def test_reading_requests_queue_and_one_flush_writes_them_all(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    """30 first uses: the requests write nothing; one flush, one transaction, a handful of
    statements whatever the number of tokens, writes every last use, seen_at and first-use
    audit row (with the request's id and address)."""
    people = [await world.user() for _ in range(30)]
    secrets = [await world.token(user) for user in people]
    with sql(database) as during:
        for i, secret in enumerate(secrets):
            r = await client.get(SELF, headers=bearer(secret) | {"x-request-id": f"use-{i}"})
            assert r.status_code == 200, r.text
    assert writes(during) == []
    assert [t.last_used_at for t in await tokens_of(database, secrets)] == [None] * 30
    assert await first_uses(database) == []
    assert len(recorder(database).pending) == 30

    with sql(database) as flushing, commits(database) as committed:
        assert await recorder(database).flush() == 30
    assert len(committed) == 1
    assert len(flushing) <= 6  # set-based: not one statement per token
    assert not any("pg_notify" in s for s in flushing)  # nobody's cache is told to drop
    stored = await tokens_of(database, secrets)
    assert all(t.last_used_at is not None for t in stored)
    for user in people:
        assert await seen_at(database, user.id) is not None
    events = await first_uses(database)
    assert sorted(e.target_id or "" for e in events) == sorted(t.id for t in stored)
    by_token = {e.target_id: e for e in events}
    for i, token in enumerate(stored):
        e = by_token[token.id]
        assert (e.request_id, e.ip, e.actor_id) == (f"use-{i}", "127.0.0.1", people[i].id)
    assert recorder(database).pending == {}
    assert await recorder(database).flush() == 0  # nothing queued: no transaction at all


async def test_a_read_request_neither_takes_nor_waits_for_a_write_lock(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    """While another transaction holds the write lock (SQLite) or the token's and user's
    rows (PostgreSQL), a first use is answered at once; the flush on PostgreSQL skips the
    held rows instead of waiting, and writes them once they are free."""
    user = await world.user()
    secret = await world.token(user)
    (token,) = await tokens_of(database, [secret])
    async with database.transaction() as holder:  # SQLite: BEGIN IMMEDIATE
        if not database.settings.is_sqlite:
            await holder.execute(
                text("SELECT 1 FROM tokens WHERE id = :t FOR UPDATE"), {"t": token.id}
            )
            await holder.execute(
                text("SELECT 1 FROM users WHERE id = :u FOR UPDATE"), {"u": user.id}
            )
        r = await asyncio.wait_for(client.get(SELF, headers=bearer(secret)), timeout=10)
        assert r.status_code == 200, r.text
        if not database.settings.is_sqlite:
            assert await asyncio.wait_for(recorder(database).flush(), timeout=10) == 0
            assert recorder(database).pending[token.id].attempts == 1  # kept for later
    assert await recorder(database).flush() == 1
    (stored,) = await tokens_of(database, [secret])
    assert stored.last_used_at is not None and await seen_at(database, user.id) is not None
    assert [e.target_id for e in await first_uses(database)] == [token.id]


async def test_a_first_use_is_audited_once_whoever_records_it_at_the_same_time(
    settings: Settings, world: World, database: Database
) -> None:
    """Two workers (two Databases, two recorders) and a writing request record the first
    use of the same tokens concurrently: each token gets exactly one first-use row."""
    secrets = [await world.token(await world.user()) for _ in range(10)]
    other = Database(settings)
    try:
        for worker in (database, other):
            for secret in secrets:
                await touch(worker, await caller(worker, secret))

        async def writing_request(secret: str) -> None:
            async with other.transaction() as db:
                principal = await authenticate(db, secret)
                await touch(other, principal, db)

        await asyncio.gather(
            recorder(database).flush(),
            recorder(other).flush(),
            *(writing_request(s) for s in secrets),
        )
        for _ in range(MAX_ATTEMPTS):  # what was skipped as busy (PostgreSQL) is retried
            await recorder(database).flush()
            await recorder(other).flush()
    finally:
        await other.dispose()
    assert recorder(database).pending == {}
    stored = await tokens_of(database, secrets)
    assert all(t.last_used_at is not None for t in stored)
    events = await first_uses(database)
    assert sorted(e.target_id or "" for e in events) == sorted(t.id for t in stored)


async def test_a_session_slides_in_memory_at_once_and_in_the_database_at_the_flush(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    """The token object the cache shares gets the new expiry before the flush, so the
    session cannot die while it is used; the flush then stores it, capped at its max."""
    await with_password(world, "slide@example.com")
    secret = (await login(client, "slide@example.com", PASSWORD)).json()["token"]
    now = utcnow()
    async with database.transaction() as db:
        await db.execute(
            update(Token)
            .where(Token.digest == digest(secret))
            .values(last_used_at=now - timedelta(minutes=5), expires_at=now + timedelta(minutes=1))
        )
    principal = await caller(database, secret)
    token = principal.token
    assert token is not None and token.max_expires_at is not None
    await touch(database, principal, now=now)
    expected = min(now + principal.policy.session_idle, token.max_expires_at)
    assert token.expires_at == expected and token.last_used_at == now
    assert is_live(token, now + timedelta(minutes=30))  # past the stored expiry
    (stored,) = await tokens_of(database, [secret])
    assert stored.expires_at == now + timedelta(minutes=1)  # not written by the request
    await recorder(database).flush()
    (stored,) = await tokens_of(database, [secret])
    assert (stored.expires_at, stored.last_used_at) == (expected, now)

    # Near the absolute deadline, the slide stops there.
    async with database.transaction() as db:
        cap = now + timedelta(minutes=10)
        await db.execute(
            update(Token).where(Token.id == token.id).values(max_expires_at=cap, last_used_at=None)
        )
    principal = await caller(database, secret)
    later = now + TOUCH_INTERVAL
    await touch(database, principal, now=later)
    await recorder(database).flush()
    (stored,) = await tokens_of(database, [secret])
    assert (stored.expires_at, stored.last_used_at) == (cap, later)


async def test_a_use_is_written_at_most_once_per_interval_and_never_moves_back(
    world: World, database: Database
) -> None:
    user = await world.user()
    secret = await world.token(user)
    now = utcnow()
    await touch(database, await caller(database, secret), now=now)
    await recorder(database).flush()
    # Another worker, whose copy of the token is older, records an earlier or a recent use.
    for moment in (now - timedelta(seconds=5), now + TOUCH_INTERVAL / 2):
        principal = await caller(database, secret)
        assert principal.token is not None
        principal.token.last_used_at = None  # as a copy loaded before the first write
        await touch(database, principal, now=moment)
        await recorder(database).flush()
    (stored,) = await tokens_of(database, [secret])
    assert stored.last_used_at == now  # neither moved back nor written again within the interval
    assert await seen_at(database, user.id) == now + TOUCH_INTERVAL / 2  # the user's latest use
    later = now + TOUCH_INTERVAL
    await touch(database, await caller(database, secret), now=later)
    await recorder(database).flush()
    (stored,) = await tokens_of(database, [secret])
    assert stored.last_used_at == later and await seen_at(database, user.id) == later
    assert len(await first_uses(database)) == 1


async def test_a_caller_loaded_again_before_the_flush_shows_the_queued_use(
    world: World, database: Database
) -> None:
    """A cache miss between the use and the flush loads the old stamps from the database:
    the new copy shows the queued use (every answer of the process agrees), queues no other."""
    user = await world.user()
    secret = await world.token(user)
    now = utcnow()
    await touch(database, await caller(database, secret), now=now)
    again = await caller(database, secret)
    assert again.token is not None and again.user is not None
    assert again.token.last_used_at is None  # not written yet
    await touch(database, again, now=now + timedelta(seconds=5))
    assert again.token.last_used_at == now and again.user.seen_at == now
    assert [u.at for u in recorder(database).pending.values()] == [now]


async def test_a_writing_request_records_in_its_own_transaction(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    user = await world.user()
    secret = await world.token(user)
    r = await client.post(
        f"/tenantry/v1/users/{user.id}/tokens", json={"name": "ci"}, headers=bearer(secret)
    )
    assert r.status_code == 201, r.text
    assert recorder(database).pending == {}  # nothing left for the recorder
    (stored,) = await tokens_of(database, [secret])
    assert stored.last_used_at is not None
    assert [e.target_id for e in await first_uses(database)] == [stored.id]


async def test_the_flush_invalidates_no_cached_answer(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    watcher = bearer(await world.token(await world.user()))
    for _ in range(2):
        assert (await client.get(SELF, headers=watcher)).status_code == 200
    with sql(database) as cached:
        assert (await client.get(SELF, headers=watcher)).status_code == 200
    assert cached == []  # the answer is cached: a dropped one would show statements below
    for _ in range(5):
        assert (
            await client.get(SELF, headers=bearer(await world.token(await world.user())))
        ).status_code == 200
    assert await recorder(database).flush() == 6
    with sql(database) as seen:
        assert (await client.get(SELF, headers=watcher)).status_code == 200
    assert seen == []  # still answered from the cache


async def test_the_app_writes_what_is_queued_when_it_stops(
    settings: Settings, world: World, database: Database
) -> None:
    app = create_app(settings, database)
    app.state.usage.interval = 3600  # no periodic flush in this test: only the one at shutdown
    secret = await world.token(await world.user())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            assert (await c.get(SELF, headers=bearer(secret))).status_code == 200
        (stored,) = await tokens_of(database, [secret])
        assert stored.last_used_at is None
    (stored,) = await tokens_of(database, [secret])
    assert stored.last_used_at is not None
    assert [e.target_id for e in await first_uses(database)] == [stored.id]


async def test_a_session_about_to_expire_is_written_without_waiting_for_the_interval(
    world: World, database: Database
) -> None:
    user = await world.user()
    secret = await world.token(user)
    now = utcnow()
    async with database.transaction() as db:
        await db.execute(
            update(Token)
            .where(Token.digest == digest(secret))
            .values(
                kind="session", expires_at=now + URGENT / 2, max_expires_at=now + timedelta(hours=8)
            )
        )
    usage = recorder(database)
    usage.interval = 3600  # only a wake-up flushes before the end of the test
    usage.start()
    try:
        principal = await caller(database, secret)
        usage.flushed.clear()
        await touch(database, principal, now=now)
        await asyncio.wait_for(usage.flushed.wait(), timeout=10)
    finally:
        await usage.stop()
    (stored,) = await tokens_of(database, [secret])
    assert stored.last_used_at == now and stored.expires_at == now + principal.policy.session_idle


async def test_a_failed_flush_is_logged_without_secrets_retried_then_dropped(
    world: World,
    database: Database,
    settings: Settings,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = await world.token(await world.user())
    principal = await caller(database, secret)
    away = Database(
        settings.model_copy(
            update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/no/such/dir.db"}
        )
    )
    try:
        await touch(away, principal)  # the request's part: never raises
        usage = recorder(away)
        with caplog.at_level(logging.WARNING, logger="tenantry.usage"):
            for attempt in range(1, MAX_ATTEMPTS):
                assert await usage.flush() == 0
                assert usage.pending[principal.token.id].attempts == attempt  # type: ignore[union-attr]
            assert await usage.flush() == 0
            assert usage.pending == {}
            await usage.flush()  # reports what it dropped
    finally:
        await away.dispose()
    assert "could not record the use of 1 tokens" in caplog.text
    assert "dropped the recorded use of 1 tokens" in caplog.text
    assert secret not in caplog.text and digest(secret) not in caplog.text


async def test_the_queue_is_bounded_and_drops_the_oldest(
    world: World, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = [await world.token(await world.user()) for _ in range(5)]
    usage = recorder(database)
    usage.capacity = 3
    for secret in secrets:
        await touch(database, await caller(database, secret))
    stored = await tokens_of(database, secrets)
    assert list(usage.pending) == [t.id for t in stored[2:]] and usage.dropped == 2
    with caplog.at_level(logging.WARNING, logger="tenantry.usage"):
        assert await usage.flush() == 3
    assert "dropped the recorded use of 2 tokens" in caplog.text
    stored = await tokens_of(database, secrets)
    assert [t.last_used_at is not None for t in stored] == [False, False, True, True, True]
    assert sorted(e.target_id or "" for e in await first_uses(database)) == sorted(
        t.id for t in stored[2:]
    )
