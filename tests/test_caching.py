"""The per-process cache of callers and their own views (access/cache.py), the generation stamp
that invalidates it (db/generation.py) and the hot paths that serve from it (faces/http.py).

Every test here warms the cache first, so that a stale answer would be served if invalidation
failed; and the statement counter proves the warm answer really came from the cache."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, text, update

from tenantry.app import create_app
from tenantry.clock import utcnow
from tenantry.config import Settings
from tenantry.db.engine import Database
from tenantry.db.generation import (
    FLAGS_SCOPE,
    FileGeneration,
    Generation,
    NotifyGeneration,
    slot,
    team_scope,
    user_scope,
)
from tenantry.db.models import User
from tenantry.identity.cache import AuthCache
from tenantry.ids import new_id
from tests.faces.ece.spec import assert_error
from tests.faces.errors import BAD_TOKEN, NO_TOKEN, astro_error, unleash_error
from tests.faces.native.test_auth import PASSWORD, login, with_password
from tests.factories import World, bearer

SELF = "/v1/users/self"
ECE_USER = "/api/v1/user"
UNLEASH_USER = "/api/admin/user"


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    """SQL statements the application sends while the block runs."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    # The hot paths' cold loads on PostgreSQL bypass the engine (Database.fetchrow).
    fetchrow = database.fetchrow

    async def fetch(sql: str, *args: Any) -> Any:
        seen.append(sql)
        return await fetchrow(sql, *args)

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    database.fetchrow = fetch  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)
        database.fetchrow = fetchrow  # type: ignore[method-assign]


async def settled(heard: list[str]) -> list[str]:
    """What a listener heard, once a first notice came and a second had time to."""
    for _ in range(100):
        if heard:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # time for a second notice, were there one
    return heard


async def warm(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> dict[str, Any]:
    first = await client.get(path, headers=headers)
    assert first.status_code == 200, first.text
    second = await client.get(path, headers=headers)
    assert second.json() == first.json()
    body: dict[str, Any] = second.json()
    return body


# --- the hot paths answer like the routes they shortcut -----------------------------------------


async def test_hot_paths_answer_exactly_like_the_face_routes(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    user = await world.user("hot@example.com", "Hot Path")
    await world.roles(org, user, "ORGANIZATION_OWNER")
    token = await world.token(user)
    for path, headers in (
        (SELF, bearer(token)),
        (ECE_USER, {"Authorization": f"ApiKey {token}"}),
        (UNLEASH_USER, {"Authorization": token}),
    ):
        hot = await client.get(path, headers=headers)
        # A query string takes the face's normal FastAPI route.
        routed = await client.get(path, params={"createIfNotExist": "false"}, headers=headers)
        assert hot.status_code == routed.status_code == 200
        assert hot.json() == routed.json()
        assert hot.headers["content-type"] == routed.headers["content-type"]
        assert hot.headers["content-type"].startswith("application/json")
        assert hot.headers.get("cache-control") == routed.headers.get("cache-control")
        assert hot.headers["x-request-id"]
    assert (await client.get(UNLEASH_USER, headers={"Authorization": token})).headers[
        "cache-control"
    ] == "no-store"


async def test_cached_hot_answers_are_sent_before_the_middleware_stack(
    app: Any, client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second request for a hot GET is answered by TenantryApp's front from the cache,
    with the same body and headers, and the request id the stack would have given it."""
    user = await world.user("front@example.com", "Front Door")
    token = await world.token(user)
    front = app.front
    answered: list[bool] = []
    original = front.answer_from_cache

    async def spy(scope: Any, send: Any) -> bool:
        answered.append(await original(scope, send))
        return answered[-1]

    monkeypatch.setattr(front, "answer_from_cache", spy)
    first = await client.get(SELF, headers=bearer(token) | {"x-request-id": "first-1"})
    for _ in range(5):  # until the cache holds the answer (a token's first use writes)
        if (await client.get(SELF, headers=bearer(token))).status_code and answered[-1]:
            break
    assert answered[0] is False and answered[-1] is True
    second = await client.get(SELF, headers=bearer(token) | {"x-request-id": "second-2"})
    third = await client.get(SELF, headers=bearer(token) | {"x-request-id": "bad id!"})
    assert answered[-2:] == [True, True]
    assert first.status_code == second.status_code == third.status_code == 200
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"]
    assert first.headers["x-request-id"] == "first-1"
    assert second.headers["x-request-id"] == "second-2"
    assert third.headers["x-request-id"] not in ("", "bad id!")  # not echoed: made anew
    routed = await client.get(SELF, params={"createIfNotExist": "false"}, headers=bearer(token))
    assert answered[-1] is False and routed.json() == second.json()  # a query string: routes


async def test_hot_paths_refuse_bad_tokens_in_each_face_own_error_body(
    client: httpx.AsyncClient,
) -> None:
    astro = await client.get(SELF, headers=bearer("tnt_not-a-token"))
    assert astro.status_code == 401 and astro.json()["statusCode"] == 401
    astro_error(astro, 401, BAD_TOKEN)
    ece = await client.get(ECE_USER, headers={"Authorization": "ApiKey tnt_not-a-token"})
    assert ece.status_code == 401
    assert ece.json()["errors"][0]["code"] == "root.unauthorized"
    unleash = await client.get(UNLEASH_USER, headers={"Authorization": "tnt_not-a-token"})
    assert unleash.status_code == 401 and unleash.json()["name"] == "UnauthorizedError"
    # No credential at all: the normal routes answer, as before.
    missing = await client.get(UNLEASH_USER)
    assert missing.status_code == 401 and missing.json()["name"] == "AuthenticationRequired"
    astro_error(await client.get(SELF), 401, NO_TOKEN)


async def test_a_warm_answer_sends_no_sql(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    token = await world.token(await world.user())
    for path, headers in (
        (SELF, bearer(token)),
        (ECE_USER, {"Authorization": f"Bearer {token}"}),
        (UNLEASH_USER, {"Authorization": token}),
    ):
        await warm(client, path, headers)
        with statements(database) as seen:
            r = await client.get(path, headers=headers)
        assert r.status_code == 200
        assert seen == []


# --- invalidation ---------------------------------------------------------------------------


async def test_a_profile_change_through_one_face_shows_at_once_in_every_cached_view(
    client: httpx.AsyncClient, world: World
) -> None:
    user = await world.user("ivy@example.com", "Ivy Old")
    token = await world.token(user)
    assert (await warm(client, SELF, bearer(token)))["fullName"] == "Ivy Old"
    ece = await warm(client, ECE_USER, {"Authorization": f"ApiKey {token}"})
    assert ece["full_name"] == "Ivy Old"
    r = await client.patch(
        ECE_USER, json={"full_name": "Ivy New"}, headers={"Authorization": f"ApiKey {token}"}
    )
    assert r.status_code == 200, r.text
    assert (await client.get(SELF, headers=bearer(token))).json()["fullName"] == "Ivy New"
    unleash = await client.get(UNLEASH_USER, headers={"Authorization": token})
    assert unleash.json()["user"]["name"] == "Ivy New"


async def test_role_changes_revocation_and_disabling_reach_a_warm_cache_at_once(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    user = await world.user()
    await world.roles(org, user)
    token = await world.token(user)
    before = await warm(client, SELF, bearer(token))
    assert not any(r["scope"]["entityId"] == ws.id for r in before["roles"])
    await world.roles(org, user, workspaces=[(ws.id, "WORKSPACE_OWNER")])
    after = (await client.get(SELF, headers=bearer(token))).json()
    granted = {"role": "WORKSPACE_OWNER", "scope": {"entityId": ws.id, "type": "WORKSPACE"}}
    assert granted in after["roles"]
    # Disabling the user: refused on the very next request, through every hot path.
    async with world.database.transaction() as db:
        await db.execute(update(User).where(User.id == user.id).values(enabled=False))
    astro_error(await client.get(SELF, headers=bearer(token)), 401, BAD_TOKEN)
    refused = await client.get(UNLEASH_USER, headers={"Authorization": token})
    unleash_error(refused, 401, "UnauthorizedError", "You must log in to use Unleash.")


async def test_a_sign_in_ends_only_the_signed_in_users_cached_answers(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    """Sign-ins write bookkeeping (last_login_at, a session): other callers keep their warm
    answers, while the user's own ECE view shows the new sign-in at once."""
    watcher = bearer(await world.token(await world.user()))
    user = await with_password(world)
    token = await world.token(user)
    ece = {"Authorization": f"ApiKey {token}"}
    assert "last_login_at" not in (await warm(client, ECE_USER, ece))["metadata"]
    await warm(client, SELF, watcher)
    assert (await login(client, user.username, PASSWORD)).status_code == 200
    with statements(database) as seen:
        assert (await client.get(SELF, headers=watcher)).status_code == 200
    assert seen == []
    assert "last_login_at" in (await client.get(ECE_USER, headers=ece)).json()["metadata"]


async def test_a_revoked_token_is_refused_on_its_next_request(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = bearer(await world.token(await world.admin()))
    user = await world.user()
    token = await world.token(user)
    await warm(client, ECE_USER, {"Authorization": f"ApiKey {token}"})
    keys = (await client.get(f"/api/v1/users/{user.username}/auth/keys", headers=admin)).json()
    assert len(keys["keys"]) == 1
    r = await client.delete(
        f"/api/v1/users/{user.username}/auth/keys/{keys['keys'][0]['id']}", headers=admin
    )
    assert r.status_code == 200, r.text
    again = await client.get(ECE_USER, headers={"Authorization": f"ApiKey {token}"})
    assert again.status_code == 401
    body = assert_error(again, 401, "root.unauthorized")
    assert body["errors"][0]["message"] == BAD_TOKEN


async def test_twenty_concurrent_first_uses_do_not_starve_a_small_pool(
    settings: Settings, world: World
) -> None:
    """Each first use of a token records it; that must never hold a second pooled connection
    while the request holds one (with 20 requests and 4 connections that deadlocked)."""
    small = settings.model_copy(update={"db_pool_size": 2})
    database = Database(small)
    try:
        app = create_app(small, database)
        tokens = [await world.token(await world.user()) for _ in range(20)]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            replies = await asyncio.wait_for(
                asyncio.gather(*(c.get(SELF, headers=bearer(t)) for t in tokens)), timeout=20
            )
        assert [r.status_code for r in replies] == [200] * 20
    finally:
        await database.dispose()


# --- the cache and the generation, directly ------------------------------------------------------


def test_an_entry_loaded_across_a_change_is_never_kept() -> None:
    generation = Generation()
    cache = AuthCache(generation)
    now = utcnow()
    mark = cache.mark()
    generation.bump()  # a commit happened while the value was being loaded
    cache.put("k", "stale", mark)
    assert cache.get("k", now) is None
    mark = cache.mark()
    generation.bump_scopes([user_scope("someone")])  # so did a sign-in (the load cannot tell)
    cache.put("k", "stale", mark, scopes=[user_scope("u1")])
    assert cache.get("k", now) is None
    cache.put("k", "fresh", cache.mark())
    assert cache.get("k", now) == "fresh"
    generation.bump()
    assert cache.get("k", now) is None


def test_a_put_after_a_change_does_not_revive_older_entries() -> None:
    generation = Generation()
    cache = AuthCache(generation)
    now = utcnow()
    cache.put("old", "stale", cache.mark())
    generation.bump()
    cache.put("new", "fresh", cache.mark())  # no look-up in between
    assert cache.get("new", now) == "fresh"
    assert cache.get("old", now) is None


def test_an_entry_expires_at_its_own_deadline() -> None:
    cache = AuthCache(Generation())
    now = utcnow()
    cache.put("k", "v", cache.mark(), valid_until=now + timedelta(seconds=5))
    assert cache.get("k", now) == "v"
    assert cache.get("k", now + timedelta(seconds=5)) is None


def test_the_cache_stays_bounded_and_evicts_the_least_recently_used() -> None:
    cache = AuthCache(Generation(), max_entries=10)
    mark = cache.mark()
    now = utcnow()
    for i in range(10):
        cache.put(i, i, mark)
    assert cache.get(0, now) == 0  # used: now the most recent
    cache.put(10, 10, mark)  # full: the least recently used (1) makes room
    assert [cache.get(k, now) for k in (0, 1, 2, 10)] == [0, None, 2, 10]
    cache.put(2, "again", mark)  # replacing a kept entry evicts nothing
    assert cache.get(3, now) == 3 and cache.get(2, now) == "again"
    for i in range(11, 40):
        cache.put(i, i, mark)
    assert len(cache._entries) == 10 and cache.get(39, now) == 39


def test_a_scoped_change_ends_only_the_entries_that_depend_on_it() -> None:
    generation = Generation()
    cache = AuthCache(generation)
    now = utcnow()
    alice, bob, team = user_scope("alice"), user_scope("bob"), team_scope("t1")
    cache.put("alice", "a", cache.mark(), scopes=[alice, team, FLAGS_SCOPE])
    cache.put("bob", "b", cache.mark(), scopes=[bob, FLAGS_SCOPE])
    cache.put("everyone", "e", cache.mark())
    generation.bump_scopes([alice])
    assert cache.get("alice", now) is None
    assert cache.get("bob", now) == "b" and cache.get("everyone", now) == "e"
    cache.put("alice", "a2", cache.mark(), scopes=[alice, team, FLAGS_SCOPE])
    generation.bump_scopes([team])  # the team's roles changed: its members' entries end
    assert cache.get("alice", now) is None and cache.get("bob", now) == "b"
    generation.bump_scopes([FLAGS_SCOPE])  # an instance flag: every user's view shows it
    assert cache.get("bob", now) is None and cache.get("everyone", now) == "e"
    cache.put("bob", "b2", cache.mark(), scopes=[bob])
    generation.bump()
    assert cache.get("bob", now) is None and cache.get("everyone", now) is None


def test_processes_sharing_a_file_see_each_others_bumps(tmp_path: Path) -> None:
    mine, theirs = FileGeneration(tmp_path / "g"), FileGeneration(tmp_path / "g")
    seen = mine.stamp()
    theirs.bump()
    assert mine.stamp() != seen
    assert mine.reliable and theirs.reliable
    a, b = slot(user_scope("alice")), slot(user_scope("bob"))
    assert a != b  # else this test would prove nothing about bob
    alice, bob, epoch = mine.slot_stamps((a,)), mine.slot_stamps((b,)), mine.epoch()
    theirs.bump_scopes([user_scope("alice")])
    assert mine.slot_stamps((a,)) != alice and mine.epoch() != epoch
    assert mine.slot_stamps((b,)) == bob


async def test_postgres_notify_reaches_another_process_and_a_lost_listener_disables_caching(
    pg_url: str,
) -> None:
    writer = Database(Settings(database_url=pg_url))
    reader = NotifyGeneration(pg_url)  # without the host file: NOTIFY alone
    try:
        await reader.ensure_started()
        assert reader.reliable
        before = reader.stamp()
        async with writer.transaction() as db:
            await db.execute(update(User).where(User.id == "nobody").values(full_name="x"))
        for _ in range(200):
            if reader.stamp() != before:
                break
            await asyncio.sleep(0.01)
        assert reader.stamp() != before
        # A change that concerns one user only (a sign-in's bookkeeping) names them.
        uid = new_id()
        own = (slot(user_scope(uid)),)
        stamp, alice = reader.stamp(), reader.slot_stamps(own)
        async with writer.transaction() as db:
            db.add(User(id=uid, username=f"{uid}@example.com", username_key=f"{uid}@example.com"))
        async with writer.transaction() as db:
            found = (await db.scalars(select(User).where(User.id == uid))).one()
            found.seen_at = utcnow()
        for _ in range(200):
            if reader.slot_stamps(own) != alice:
                break
            await asyncio.sleep(0.01)
        assert reader.slot_stamps(own) != alice
        # ... a new user concerns nobody's cached answers yet, the bookkeeping only alice's:
        settled = reader.stamp()
        assert settled == stamp
        async with writer.transaction() as db:
            found = (await db.scalars(select(User).where(User.id == uid))).one()
            found.last_login_at = utcnow()
        await asyncio.sleep(0.2)
        assert reader.stamp() == settled
        # A read-only transaction notifies nobody.
        quiet = reader.stamp()
        async with writer.transaction(write=False) as db:
            await db.execute(text("SELECT 1"))
        await asyncio.sleep(0.2)
        assert reader.stamp() == quiet
        # Kill the listening backend: the stamp is unreliable until the listener is back.
        pid = reader._conn.get_server_pid()
        async with writer.transaction() as db:
            await db.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        for _ in range(200):
            if not reader.reliable:
                break
            await asyncio.sleep(0.01)
        assert not reader.reliable
        assert AuthCache(reader).get("anything", utcnow()) is None
        await reader.ensure_started()
        assert reader.reliable
    finally:
        await reader.close()
        await writer.dispose()


async def test_a_sign_in_on_postgres_announces_its_user_once_and_only_at_commit(
    pg_url: str,
) -> None:
    """The sign-in's one statement sends the commit's notice itself: other processes hear
    `scopes:user:<id>` once the transaction commits, nothing if it rolls back, and the commit sends
    no notice of its own (PostgreSQL would fold a second identical one into the first, but
    it would cost a round trip)."""
    import asyncpg

    from tenantry.config import load_settings
    from tenantry.db.generation import CHANNEL
    from tenantry.directory import accounts
    from tenantry.identity import sessions
    from tenantry.identity.principals import system_principal
    from tenantry.identity.security import Security

    settings = load_settings(database_url=pg_url, login_rate_per_ip=1000)
    database, security = Database(settings), Security.from_settings(settings)
    world = World(database)
    user = await world.user()
    async with database.transaction() as db:
        await accounts.set_password(db, security.hasher, system_principal(), user.id, PASSWORD)
    heard: list[str] = []
    listener = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
    await listener.add_listener(CHANNEL, lambda *args: heard.append(args[-1]))

    async def sign_in(db: Any) -> sessions.LoginOutcome:
        return await sessions.login(
            db,
            security.hasher,
            security.policy,
            security.limits,
            username=user.username,
            password=PASSWORD,
            ip="10.0.0.1",
        )

    class Undo(Exception):
        pass

    try:
        try:
            async with database.transaction() as db:
                assert (await sign_in(db)).minted is not None
                raise Undo
        except Undo:
            pass
        with statements(database) as seen:
            async with database.transaction() as db:
                assert (await sign_in(db)).minted is not None
        assert [s.split()[0] for s in seen if "pg_notify" in s] == ["WITH"]
        assert await settled(heard) == [f"scopes:user:{user.id}"]
    finally:
        await listener.close()
        await security.close()
        await database.dispose()
