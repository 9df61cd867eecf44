"""GET /api/admin/user, its profile, credentials and the simple login, against the captures."""

from __future__ import annotations

from typing import Any

import httpx

from tenantry.db.models import User
from tenantry.directory import accounts
from tenantry.faces.unleash.errors import SIGN_IN_REFUSED
from tenantry.identity.passwords import Hasher
from tenantry.identity.principals import system_principal
from tests.faces.errors import unleash_error
from tests.faces.unleash import spec
from tests.factories import World, bearer

ME = "/api/admin/user"
PASSWORD = "Viewer-Passw0rd!x"


async def with_password(world: World, user: User) -> None:
    async with world.database.transaction() as db:
        await accounts.set_password(db, Hasher(2, 19456, 1), system_principal(), user.id, PASSWORD)


def same_as_capture(number: int, r: httpx.Response, schema: str | None = None) -> dict[str, Any]:
    """Status, cache-control and body (ids/timestamps/secrets aside) as Unleash answered; the
    body valid against the spec whenever Unleash's own was."""
    status, headers, expected = spec.response(number)
    assert r.status_code == status, r.text
    assert r.headers.get("cache-control") == headers.get("cache-control")
    body: dict[str, Any] = r.json()
    if "details" in expected:  # Unleash gives some error bodies an id and others none: as it
        assert ("id" in body) == ("id" in expected), body
        assert isinstance(body.pop("id", ""), str)
        expected = {k: v for k, v in expected.items() if k != "id"}
    assert spec.shape(body) == spec.shape(expected)
    if schema is not None and not spec.errors(schema, expected):
        assert spec.errors(schema, body) == []
    return body


async def admin_named_admin(world: World) -> User:
    """Unleash's built-in `admin` (no e-mail) as a SYSTEM_ADMIN."""
    user = await world.user("admin")
    await world.system_role(user, "SYSTEM_ADMIN")
    return user


async def viewer(world: World) -> User:
    return await world.user("peer.user@example.com", "Peer User", email="peer.user@example.com")


async def test_missing_and_empty_credentials_are_authentication_required(
    client: httpx.AsyncClient,
) -> None:
    same_as_capture(2, await client.get(ME))
    same_as_capture(6, await client.get(ME, headers={"Authorization": ""}))


async def test_bad_tokens_are_unauthorized(client: httpx.AsyncClient) -> None:
    same_as_capture(3, await client.get(ME, headers={"Authorization": "invalid-token"}))
    wellformed = "*:*." + "0" * 64
    same_as_capture(4, await client.get(ME, headers={"Authorization": wellformed}))
    same_as_capture(3, await client.get(ME, headers=bearer("tnt_nope")))
    # A cookie no session has is no session: the login hint, as without any credential.
    client.cookies.set("unleash-session", "s%3Atnt_nope")
    same_as_capture(2, await client.get(ME))


async def test_admin_pat_raw_and_bearer(client: httpx.AsyncClient, world: World) -> None:
    admin = await admin_named_admin(world)
    token = await world.token(admin)
    raw = same_as_capture(10, await client.get(ME, headers={"Authorization": token}), "meSchema")
    assert raw["user"]["id"] == admin.seq and raw["user"]["username"] == "admin"
    prefixed = await client.get(ME, headers=bearer(token))
    assert spec.shape(prefixed.json()) == spec.shape(raw)


async def test_viewer_pat(client: httpx.AsyncClient, world: World) -> None:
    user = await viewer(world)
    token = await world.token(user)
    body = same_as_capture(33, await client.get(ME, headers={"Authorization": token}), "meSchema")
    assert "username" not in body["user"] and body["user"]["email"] == "peer.user@example.com"
    expected_image = spec.response(33)[2]["user"]["imageUrl"]
    assert body["user"]["imageUrl"] == expected_image  # gravatar of the e-mail, as Unleash


async def test_admin_gravatar_matches_unleash(client: httpx.AsyncClient, world: World) -> None:
    token = await world.token(await admin_named_admin(world))
    body = (await client.get(ME, headers={"Authorization": token})).json()
    assert body["user"]["imageUrl"] == spec.response(10)[2]["user"]["imageUrl"]


async def test_editor_permissions_are_translated(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    user = await world.user()
    await world.roles(org, user, workspaces=[(ws.id, "WORKSPACE_OWNER")])
    token = await world.token(user)
    body = (await client.get(ME, headers=bearer(token))).json()
    assert {"permission": "UPDATE_PROJECT", "project": ws.id} in body["permissions"]
    assert {"permission": "ADMIN"} not in body["permissions"]
    assert spec.errors("meSchema", body) == []


async def test_api_token_renders_as_unleash_token_user(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    made = await world.api_token(org)
    r = await client.get(ME, headers={"Authorization": made.secret})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    user = r.json()["user"]
    assert set(user) == set(spec.response(1)[2]["user"])
    assert user["secret"] == made.secret and user["internalAdminTokenUserId"] == -42
    profile = await client.get(f"{ME}/profile", headers={"Authorization": made.secret})
    same_as_capture(12, profile)


async def test_profile(client: httpx.AsyncClient, world: World) -> None:
    token = await world.token(await admin_named_admin(world))
    r = await client.get(f"{ME}/profile", headers={"Authorization": token})
    status, _, expected = spec.response(11)
    body = r.json()
    assert r.status_code == status
    assert {k: v for k, v in body.items() if k != "projects"} == {
        k: v for k, v in expected.items() if k != "projects"
    }


async def test_unknown_path_is_unleash_not_found(client: httpx.AsyncClient, world: World) -> None:
    token = await world.token(await admin_named_admin(world))
    r = await client.get(f"{ME}/permissions", headers={"Authorization": token})
    same_as_capture(13, r)
    assert r.json()["message"] == spec.response(13)[2]["message"]


async def test_simple_login_sets_a_working_session_cookie(
    client: httpx.AsyncClient, world: World
) -> None:
    user = await viewer(world)
    await with_password(world, user)
    creds = {"username": "peer.user@example.com", "password": PASSWORD}
    r = await client.post("/auth/simple/login", json=creds)
    same_as_capture(31, r, "userSchema")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("unleash-session=s%3A") and "HttpOnly" in cookie
    assert "Path=/" in cookie and "SameSite=lax" in cookie
    value = r.cookies["unleash-session"]
    client.cookies.clear()
    client.cookies.set("unleash-session", value)
    me = (await client.get(ME)).json()
    assert me["user"]["id"] == user.seq and me["permissions"] == []
    assert me["user"]["activeSessions"] == 1


async def test_admin_login_and_cookie_match_captures(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await admin_named_admin(world)
    await with_password(world, admin)
    r = await client.post("/auth/simple/login", json={"username": "admin", "password": PASSWORD})
    same_as_capture(7, r, "userSchema")
    value = r.cookies["unleash-session"]
    client.cookies.clear()
    client.cookies.set("unleash-session", value)
    body = same_as_capture(8, await client.get(ME), "meSchema")
    assert body["user"]["id"] == admin.seq


async def test_wrong_password_is_refused_and_counted(
    client: httpx.AsyncClient, world: World
) -> None:
    user = await viewer(world)
    await with_password(world, user)
    r = await client.post(
        "/auth/simple/login", json={"username": "peer.user@example.com", "password": "nope"}
    )
    assert r.status_code == 401 and "set-cookie" not in r.headers
    body = unleash_error(r, 401, "PasswordMismatch", SIGN_IN_REFUSED)
    assert body["details"] == [{"message": SIGN_IN_REFUSED}]
    for refused in (  # an unknown user, and names and passwords no account has: the same
        {"username": "nobody@example.com", "password": PASSWORD},
        {"username": "", "password": PASSWORD},
        {"username": "peer.user@example.com", "password": ""},
        {"username": "x" * 400, "password": PASSWORD},
    ):
        r = await client.post("/auth/simple/login", json=refused)
        unleash_error(r, 401, "PasswordMismatch", SIGN_IN_REFUSED)
    async with world.database.transaction() as db:
        stored = await db.get(User, user.seq)
        assert stored is not None and stored.login_attempts == 1
