"""ece sign-in: _login, _logout, _refresh, /users/auth and /users/auth/methods."""

from __future__ import annotations

from datetime import datetime

import httpx
from sqlalchemy import select

from tenantry.db.models import User
from tests.faces.ece.conftest import PASSWORD, V, basic, with_password
from tests.faces.ece.spec import assert_ece, assert_error
from tests.factories import World, bearer


async def _login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        f"{V}/users/auth/_login", json={"username": username, "password": password}
    )


async def test_login_gives_a_bearer_token(client: httpx.AsyncClient, world: World) -> None:
    user = await with_password(world, "ops", "SYSTEM_VIEWER")
    r = await _login(client, "OPS")
    assert r.status_code == 200, r.text
    body = r.json()
    assert_ece(body, "TokenResponse")
    assert datetime.fromisoformat(body["session_expiration_time"]) > datetime.now().astimezone()
    me = await client.get(f"{V}/user", headers=bearer(body["token"]))
    assert me.status_code == 200 and me.json()["user_name"] == "ops"
    assert "last_login_at" in me.json()["metadata"] and "first_login_at" in me.json()["metadata"]
    info = await client.get(f"{V}/users/auth", headers=bearer(body["token"]))
    assert info.status_code == 200
    assert_ece(info.json(), "AuthenticationInfo")
    assert info.json()["has_elevated_permissions"] is False
    assert info.json()["refresh_token_url"] == "/api/v1/users/auth/_refresh"
    assert "expires_at" in info.json()
    assert user.username == "ops"


async def test_login_refusals(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "ops")
    for username, password in (("ops", "wrong-password-9"), ("ghost", PASSWORD)):
        assert_error(await _login(client, username, password), 401, "root.unauthenticated")
    async with world.database.transaction() as db:
        stored = await db.scalar(select(User).where(User.username == "ops"))
        assert stored is not None and stored.login_attempts == 1 and stored.last_login_at is None
    r = await client.post(f"{V}/users/auth/_login", json={"username": "ops"})
    assert_error(r, 400, "root.invalid_json_request")
    r = await client.post(
        f"{V}/users/auth/_login", content=b"{", headers={"content-type": "application/json"}
    )
    assert_error(r, 400, "root.invalid_json_request")


async def test_refresh_and_logout(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "ops")
    token = (await _login(client, "ops")).json()["token"]
    r = await client.post(f"{V}/users/auth/_refresh", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert_ece(r.json(), "TokenResponse")
    fresh = r.json()["token"]
    assert fresh != token
    assert_error(await client.get(f"{V}/user", headers=bearer(token)), 401, "root.unauthorized")
    r = await client.post(f"{V}/users/auth/_logout", headers=bearer(fresh))
    assert r.status_code == 200 and r.json() == {}
    assert_error(await client.get(f"{V}/user", headers=bearer(fresh)), 401, "root.unauthorized")
    # HTTP Basic has no session to end or refresh: not the token these need (ECE's 401).
    for path in ("_logout", "_refresh"):
        r = await client.post(f"{V}/users/auth/{path}", headers=basic("ops"))
        body = assert_error(r, 401, "root.unauthorized")
        assert "/api/v1/users/auth/_login" in body["errors"][0]["message"], body
    assert_error(await client.post(f"{V}/users/auth/_logout"), 401, "root.unauthorized")


async def test_methods_need_no_credentials(client: httpx.AsyncClient) -> None:
    r = await client.get(f"{V}/users/auth/methods")
    assert r.status_code == 200
    assert_ece(r.json(), "AvailableAuthenticationMethods")
    assert r.json()["password"] is True and r.json()["saml"] is False
