"""Sign-in, sessions, lockout, rate limits, elevation, passwords and own tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
import pytest
from sqlalchemy import select, update

from tenantry.app import create_app
from tenantry.audit import log as audit
from tenantry.clock import iso_z, utcnow
from tenantry.config import Settings, load_settings
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent, Token, User
from tenantry.directory import accounts
from tenantry.identity import tokens
from tenantry.identity.principals import ELEVATION_HINT, anonymous, system_principal
from tenantry.identity.tokens import digest
from tenantry.identity.usage import recorder
from tests.faces.errors import BAD_TOKEN, astro_error, native_error
from tests.factories import World, bearer

if TYPE_CHECKING:
    from tenantry.identity.passwords import Hasher

V = "/tenantry/v1"
PASSWORD = "violet-staircase-42"


async def with_password(world: World, username: str | None = None, **fields: object) -> User:
    user = await world.user(username, **fields)  # type: ignore[arg-type]
    async with world.database.transaction() as db:
        await accounts.set_password(db, _hasher(), system_principal(), user.id, PASSWORD)
    return user


def _hasher() -> Hasher:
    from tenantry.identity.passwords import Hasher

    return Hasher(2, 19456, 1)


@pytest.fixture
def strict_settings(settings: Settings) -> Settings:
    return load_settings(
        database_url=settings.database_url,
        environment="test",
        require_elevation=True,
        login_rate_per_account=1000,
        login_rate_per_ip=1000,
        lockout_threshold=3,
    )


@pytest.fixture
async def strict(strict_settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app with elevation required and rate limits out of the way."""
    app = create_app(strict_settings, database)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(f"{V}/auth/login", json={"username": username, "password": password})


def refusal(r: httpx.Response) -> tuple[int, str, str]:
    body = r.json()
    return r.status_code, body["title"], body["detail"]


async def test_login_gives_a_working_session(client: httpx.AsyncClient, world: World) -> None:
    user = await with_password(world, "ada@example.com")
    r = await login(client, "ADA@example.com", PASSWORD)  # any case finds the same user
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"].startswith("tnt_") and body["tokenType"] == "Bearer"
    assert body["userId"] == user.id and body["expiresAt"] <= body["maxExpiresAt"]
    me = await client.get("/v1/users/self", headers=bearer(body["token"]))
    assert me.status_code == 200 and me.json()["id"] == user.id
    async with world.database.transaction() as db:
        stored = await db.scalar(select(User).where(User.id == user.id))
        assert stored is not None and stored.first_login_at is not None
        assert stored.last_login_at is not None and stored.login_attempts == 0
        assert stored.password_hash and PASSWORD not in stored.password_hash


async def test_a_sign_in_writes_its_bookkeeping_session_and_audit_event(
    client: httpx.AsyncClient, world: World
) -> None:
    """The sign-in writes with prepared statements, not ORM objects: the rows must be what
    the ORM wrote before (first sign-in kept, last one moved, failures forgotten)."""
    user = await with_password(world, "ida@example.com")
    async with world.database.transaction() as db:
        await db.execute(update(User).where(User.id == user.id).values(login_attempts=2))
    first = (await login(client, "ida@example.com", PASSWORD)).json()
    async with world.database.transaction() as db:
        once = await db.scalar(select(User).where(User.id == user.id))
        assert once is not None and once.login_attempts == 0 and once.locked_until is None
        assert once.first_login_at == once.last_login_at == once.seen_at is not None
        assert once.first_login_at is not None  # implied above; narrows the type
    second = await client.post(
        f"{V}/auth/login",
        json={"username": "ida@example.com", "password": PASSWORD},
        headers={"X-Request-Id": "sign-in-2"},
    )
    async with world.database.transaction() as db:
        twice = await db.scalar(select(User).where(User.id == user.id))
        assert twice is not None and twice.first_login_at == once.first_login_at
        assert twice.last_login_at is not None and twice.last_login_at > once.first_login_at
        token = await db.scalar(select(Token).where(Token.digest == digest(second.json()["token"])))
        event = await db.scalar(select(AuditEvent).where(AuditEvent.request_id == "sign-in-2"))
    assert token is not None and first["token"] != second.json()["token"]
    assert (token.kind, token.name, token.user_id) == ("session", "session", user.id)
    assert token.created_by == token.updated_by == user.id and token.revoked_at is None
    assert token.short_token == second.json()["token"][4:12]
    assert token.created_at is not None and token.expires_at is not None
    assert token.created_at < token.expires_at <= token.max_expires_at  # type: ignore[operator]
    assert second.json()["expiresAt"] == iso_z(token.expires_at)
    assert event is not None and event.action == "auth.login.success"
    assert (event.actor_type, event.target_type, event.target_id) == ("anonymous", "user", user.id)
    assert event.details == {"token": token.id} and event.ip


def test_the_rows_a_sign_in_writes_fill_every_column_its_statement_binds() -> None:
    """On PostgreSQL the sign-in's rows go through one prepared statement whose parameters
    are fixed (tokens.SESSION_COLUMNS, audit.EVENT_COLUMNS): a column added to a row but not
    to its tuple would silently not be written."""
    now = utcnow()
    session, secret = tokens.new_session("u", now, now, now)
    assert set(session) == set(tokens.SESSION_COLUMNS) and digest(secret) == session["digest"]
    event = audit.event_row(anonymous(), "auth.login.success", now, details={"token": "t"})
    assert set(event) == set(audit.EVENT_COLUMNS)


async def test_a_sign_in_upgrades_a_hash_made_with_weaker_parameters(
    settings: Settings, database: Database, world: World
) -> None:
    user = await with_password(world, "jo@example.com")  # t=2
    stronger = load_settings(database_url=settings.database_url, argon2_time_cost=3)
    transport = httpx.ASGITransport(app=create_app(stronger, database))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        assert (await login(c, "jo@example.com", PASSWORD)).status_code == 200
        assert (await login(c, "jo@example.com", PASSWORD)).status_code == 200
    async with world.database.transaction() as db:
        stored = await db.scalar(select(User.password_hash).where(User.id == user.id))
    assert stored is not None and ",t=3," in stored and PASSWORD not in stored
    assert await _hasher().verify(stored, PASSWORD)


async def test_unknown_user_and_wrong_password_look_the_same(
    client: httpx.AsyncClient, world: World
) -> None:
    await with_password(world, "ada@example.com")
    unknown = await login(client, "nobody@example.com", PASSWORD)
    wrong = await login(client, "ada@example.com", "wrong-password-here")
    assert (
        refusal(unknown) == refusal(wrong) == (401, "Unauthorized", "invalid username or password")
    )
    assert unknown.headers.keys() == wrong.headers.keys()
    assert PASSWORD not in unknown.text + wrong.text


@pytest.mark.parametrize(
    "state",
    [{"status": "INACTIVE"}, {"status": "BANNED"}, {"status": "PENDING"}, {"enabled": False}],
)
async def test_accounts_that_may_not_sign_in(
    client: httpx.AsyncClient, world: World, state: dict[str, object]
) -> None:
    user = await with_password(world, "eve@example.com")
    token = await world.token(user)
    async with world.database.transaction() as db:
        stored = await db.scalar(select(User).where(User.id == user.id))
        assert stored is not None
        for key, value in state.items():
            setattr(stored, key, value)
    r = await login(client, "eve@example.com", PASSWORD)
    assert refusal(r) == (401, "Unauthorized", "invalid username or password")
    astro_error(await client.get("/v1/users/self", headers=bearer(token)), 401, BAD_TOKEN)


async def test_lockout_grows_and_answers_like_a_wrong_password(
    strict: httpx.AsyncClient, world: World
) -> None:
    user = await with_password(world, "bob@example.com")
    for _ in range(3):
        wrong = await login(strict, "bob@example.com", "not-the-password")
        assert refusal(wrong) == (401, "Unauthorized", "invalid username or password")
    locked = await login(strict, "bob@example.com", PASSWORD)  # right password, but locked
    assert refusal(locked) == (401, "Unauthorized", "invalid username or password")
    async with world.database.transaction() as db:
        stored = await db.scalar(select(User).where(User.id == user.id))
        assert stored is not None and stored.login_attempts == 4
        assert stored.locked_until is not None
        first_lock = stored.locked_until - utcnow()
        assert timedelta(seconds=30) < first_lock <= timedelta(seconds=61)  # 4th failure: 2x
        stored.locked_until = utcnow() - timedelta(seconds=1)  # wait it out
        actions = set(
            await db.scalars(select(AuditEvent.action).where(AuditEvent.target_id == user.id))
        )
    assert {"auth.login.failure", "auth.lockout"} <= actions
    ok = await login(strict, "bob@example.com", PASSWORD)
    assert ok.status_code == 200
    async with world.database.transaction() as db:
        stored = await db.scalar(select(User).where(User.id == user.id))
        assert stored is not None and stored.login_attempts == 0 and stored.locked_until is None


async def test_failures_are_counted_exactly_under_concurrency(
    strict: httpx.AsyncClient, world: World
) -> None:
    user = await with_password(world, "carol@example.com")
    results = await asyncio.gather(
        *(login(strict, "carol@example.com", f"wrong-{i}-password") for i in range(100))
    )
    assert {r.status_code for r in results} == {401}
    async with world.database.transaction() as db:
        stored = await db.scalar(select(User).where(User.id == user.id))
        assert stored is not None and stored.login_attempts == 100


async def _throttled_events(world: World) -> list[AuditEvent]:
    async with world.database.transaction() as db:
        found = await db.scalars(
            select(AuditEvent).where(AuditEvent.action == "auth.login.throttled")
        )
        return list(found)


async def test_login_is_rate_limited_per_account(client: httpx.AsyncClient, world: World) -> None:
    dan = await with_password(world, "dan@example.com")
    codes = [
        (await login(client, "dan@example.com", "wrong-password-x")).status_code for _ in range(11)
    ]
    assert codes == [401] * 10 + [429]
    limited = await login(client, "dan@example.com", PASSWORD)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["status"] == 429
    native_error(limited, 429, "too many sign-in attempts, try again later")
    assert "dan@example.com" not in limited.text and PASSWORD not in limited.text
    # The window's first refusal is audited and kept; the second is not audited again.
    (event,) = await _throttled_events(world)
    assert event.actor_type == "anonymous" and event.target_id == dan.id
    assert event.details["budget"] == "account"
    assert 1 <= event.details["retry_after_seconds"] <= 60
    assert PASSWORD not in str(event.details)
    async with world.database.transaction() as db:
        stored = await db.scalar(select(User).where(User.id == dan.id))
        assert stored is not None and stored.login_attempts == 10  # refusals verify nothing


async def test_throttled_unknown_account_is_audited_without_a_target(
    client: httpx.AsyncClient, world: World
) -> None:
    for _ in range(12):
        await login(client, "nobody@example.com", "wrong-password-x")
    (event,) = await _throttled_events(world)
    assert event.target_type == "user" and event.target_id is None
    assert "nobody" not in str(event.details)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"username": "a", "password": "x" * 5000}, ["password"]),
        ({"username": "a" * 400, "password": "p"}, ["username"]),
        ({"username": "a"}, ["password"]),
        ({}, ["username", "password"]),
        ([], ["body"]),
        ({"username": "a", "password": "b", "extra": 1}, ["extra"]),
    ],
)
async def test_login_refuses_malformed_input_cleanly(
    client: httpx.AsyncClient, body: object, fields: list[str]
) -> None:
    r = await client.post(f"{V}/auth/login", json=body)
    assert r.status_code == 400 and r.json()["status"] == 400
    native_error(r, 400, fields=fields)
    assert "x" * 100 not in r.text  # the password is not echoed


async def test_logout_and_refresh(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "fay@example.com")
    first = (await login(client, "fay@example.com", PASSWORD)).json()
    r = await client.post(f"{V}/auth/refresh", headers=bearer(first["token"]))
    assert r.status_code == 200
    second = r.json()
    assert second["maxExpiresAt"] == first["maxExpiresAt"]  # refreshing never extends the cap
    astro_error(await client.get("/v1/users/self", headers=bearer(first["token"])), 401, BAD_TOKEN)
    assert (await client.get("/v1/users/self", headers=bearer(second["token"]))).status_code == 200
    out = await client.post(f"{V}/auth/logout", headers=bearer(second["token"]))
    assert out.status_code == 204
    ended = await client.get("/v1/users/self", headers=bearer(second["token"]))
    astro_error(ended, 401, BAD_TOKEN)


async def test_personal_token_cannot_be_used_as_a_session(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await world.token(await world.user())
    r = await client.post(f"{V}/auth/logout", headers=bearer(token))
    assert r.status_code == 400 and "session" in r.json()["detail"]
    assert (await client.get("/v1/users/self", headers=bearer(token))).status_code == 200


async def test_sessions_slide_but_never_past_the_cap(
    client: httpx.AsyncClient, world: World
) -> None:
    await with_password(world, "gus@example.com")
    session = (await login(client, "gus@example.com", PASSWORD)).json()
    async with world.database.transaction() as db:
        token = await db.scalar(select(Token).where(Token.kind == "session"))
        assert token is not None and token.max_expires_at is not None
        token.last_used_at = utcnow() - timedelta(minutes=5)
        token.expires_at = utcnow() + timedelta(minutes=1)
    assert (await client.get("/v1/users/self", headers=bearer(session["token"]))).status_code == 200
    await recorder(world.database).flush()  # the reading request only queued its use
    async with world.database.transaction() as db:
        token = await db.scalar(select(Token).where(Token.kind == "session"))
        assert token is not None and token.expires_at is not None
        assert token.expires_at > utcnow() + timedelta(minutes=100)  # idle window restarted
        assert token.max_expires_at is not None and token.expires_at <= token.max_expires_at


async def test_admin_ends_all_sessions_of_a_user(client: httpx.AsyncClient, world: World) -> None:
    user = await with_password(world, "hal@example.com")
    sessions = [
        (await login(client, "hal@example.com", PASSWORD)).json()["token"] for _ in range(2)
    ]
    personal = await world.token(user)
    admin_h = bearer(await world.token(await world.admin()))
    r = await client.delete(f"{V}/users/{user.id}/sessions", headers=admin_h)
    assert r.status_code == 200 and r.json() == {"revoked": 2}
    for token in sessions:
        astro_error(await client.get("/v1/users/self", headers=bearer(token)), 401, BAD_TOKEN)
    assert (await client.get("/v1/users/self", headers=bearer(personal))).status_code == 200
    other = bearer(await world.token(await world.user()))
    hidden = await client.delete(f"{V}/users/{user.id}/sessions", headers=other)
    native_error(hidden, 404, "user not found")


async def test_sensitive_operations_need_elevation(strict: httpx.AsyncClient, world: World) -> None:
    admin = await with_password(world, "root@example.com")
    await world.system_role(admin, "SYSTEM_ADMIN")
    victim = await world.user()
    h = bearer((await login(strict, "root@example.com", PASSWORD)).json()["token"])
    denied = await strict.delete(f"{V}/users/{victim.id}", headers=h)
    assert denied.status_code == 403 and "elevate" in denied.json()["detail"]
    for path, body in [
        (f"{V}/users/{victim.id}/tokens", {}),
        (f"{V}/users/{victim.id}/system-role", {"role": "SYSTEM_VIEWER"}),
        (f"{V}/users/{victim.id}/password", {"password": "fresh-password-9"}),
    ]:
        method = strict.post if path.endswith("tokens") else strict.put
        native_error(await method(path, json=body, headers=h), 403, ELEVATION_HINT)
    wrong = await strict.post(f"{V}/auth/elevate", json={"password": "nope-nope-nope"}, headers=h)
    assert wrong.status_code == 403
    native_error(wrong, 403, "the password is incorrect")
    ok = await strict.post(f"{V}/auth/elevate", json={"password": PASSWORD}, headers=h)
    assert ok.status_code == 200 and ok.json()["elevatedUntil"].endswith("Z")
    me = (await strict.get(f"{V}/users/{admin.id}", headers=h)).json()
    assert me["elevatedPermissions"] == {"enabled": True, "expiresAt": ok.json()["elevatedUntil"]}
    r = await strict.put(
        f"{V}/users/{victim.id}/system-role", json={"role": "SYSTEM_VIEWER"}, headers=h
    )
    assert r.status_code == 204
    assert (await strict.delete(f"{V}/users/{victim.id}", headers=h)).status_code == 204
    assert (await strict.delete(f"{V}/auth/elevate", headers=h)).status_code == 204
    again = await strict.post(f"{V}/users/{admin.id}/tokens", json={}, headers=h)
    assert again.status_code == 201  # tokens for yourself are never sensitive


async def test_change_own_password(client: httpx.AsyncClient, world: World) -> None:
    user = await with_password(world, "ivy@example.com")
    current = (await login(client, "ivy@example.com", PASSWORD)).json()["token"]
    other = (await login(client, "ivy@example.com", PASSWORD)).json()["token"]
    url, h = f"{V}/users/{user.id}/password", bearer(current)
    bad = await client.put(
        url, json={"password": "new-password-77", "currentPassword": "x"}, headers=h
    )
    assert bad.status_code == 400
    native_error(bad, 400, "the current password is incorrect", fields=["currentPassword"])
    common = await client.put(
        url, json={"password": "password1", "currentPassword": PASSWORD}, headers=h
    )
    assert common.status_code == 400 and common.json()["errors"][0]["code"] == "too_common"
    ok = await client.put(
        url, json={"password": "new-password-77", "currentPassword": PASSWORD}, headers=h
    )
    assert ok.status_code == 204
    assert (await client.get("/v1/users/self", headers=bearer(current))).status_code == 200
    astro_error(await client.get("/v1/users/self", headers=bearer(other)), 401, BAD_TOKEN)
    old = await login(client, "ivy@example.com", PASSWORD)
    assert refusal(old) == (401, "Unauthorized", "invalid username or password")
    assert (await login(client, "ivy@example.com", "new-password-77")).status_code == 200


async def test_cannot_change_someone_elses_password(
    client: httpx.AsyncClient, world: World
) -> None:
    victim = await with_password(world, "jo@example.com")
    h = bearer(await world.token(await world.user()))
    r = await client.put(
        f"{V}/users/{victim.id}/password", json={"password": "owned-you-123"}, headers=h
    )
    assert r.status_code == 404
    native_error(r, 404, "user not found")
    assert (await login(client, "jo@example.com", PASSWORD)).status_code == 200


async def test_own_tokens(client: httpx.AsyncClient, world: World) -> None:
    me = await world.user()
    h = bearer(await world.token(me))
    created = await client.post(
        f"{V}/me/tokens", json={"name": "laptop", "expiresInDays": 30}, headers=h
    )
    assert created.status_code == 201 and created.json()["token"].startswith("tnt_")
    listed = await client.get(f"{V}/me/tokens", headers=h)
    assert {t["name"] for t in listed.json()["tokens"]} == {"test", "laptop"}
    assert all("token" not in t for t in listed.json()["tokens"])
    someone = await world.user()
    their = await world.token(someone)
    async with world.database.transaction() as db:
        their_id = await db.scalar(select(Token.id).where(Token.user_id == someone.id))
    not_mine = await client.delete(f"{V}/me/tokens/{their_id}", headers=h)
    native_error(not_mine, 404, "token not found")
    assert (await client.get("/v1/users/self", headers=bearer(their))).status_code == 200
    mine = created.json()["id"]
    assert (await client.delete(f"{V}/me/tokens/{mine}", headers=h)).status_code == 204
    revoked = await client.get("/v1/users/self", headers=bearer(created.json()["token"]))
    astro_error(revoked, 401, BAD_TOKEN)


@pytest.mark.parametrize("header", ["Bearer " + "x" * 5000, "Bearer tnt_" + "y" * 300])
async def test_over_long_credentials_are_refused_cleanly(
    client: httpx.AsyncClient, header: str
) -> None:
    r = await client.get("/v1/users/self", headers={"Authorization": header})
    assert r.status_code == 401 and r.json()["statusCode"] == 401
    astro_error(r, 401, BAD_TOKEN)
    assert "x" * 50 not in r.text and "y" * 50 not in r.text


async def test_owner_grants_through_teams_need_elevation(
    strict: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    owner = await with_password(world, "own@example.com")
    await world.roles(org, owner, "ORGANIZATION_OWNER")
    member = await world.user()
    await world.roles(org, member)
    h = bearer((await login(strict, "own@example.com", PASSWORD)).json()["token"])
    teams = f"/v1/organizations/{org.id}/teams"
    body = {"name": "admins", "organizationRole": "ORGANIZATION_OWNER"}
    denied = await strict.post(teams, json=body, headers=h)
    assert denied.status_code == 403 and "elevate" in denied.json()["message"]
    plain = await strict.post(teams, json={"name": "readers"}, headers=h)
    assert plain.status_code == 200
    team_id = plain.json()["id"]
    up = await strict.post(
        f"{teams}/{team_id}/roles", json={"organizationRole": "ORGANIZATION_OWNER"}, headers=h
    )
    assert up.status_code == 403
    astro_error(up, 403, ELEVATION_HINT)
    assert (
        await strict.post(f"{V}/auth/elevate", json={"password": PASSWORD}, headers=h)
    ).status_code == 200
    up = await strict.post(
        f"{teams}/{team_id}/roles", json={"organizationRole": "ORGANIZATION_OWNER"}, headers=h
    )
    assert up.status_code == 200
    added = await strict.post(
        f"{teams}/{team_id}/members", json={"memberIds": [member.id]}, headers=h
    )
    assert added.status_code == 204
