"""ece elevated permissions (POST/DELETE /users/auth/_elevate, from the 2023 spec)."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from tenantry.db.models import Token, User
from tests.faces.ece.conftest import PASSWORD, V, basic, with_password
from tests.faces.ece.spec import assert_ece, assert_error
from tests.factories import World, bearer

ELEVATE = f"{V}/users/auth/_elevate"
SPEC = "apidocs-pre-ms89-with-elevate.json"
ELEVATION_REQUIRED = "root.unauthorized.rbac.elevated_permissions_required"


async def _session(client: httpx.AsyncClient, username: str) -> str:
    r = await client.post(
        f"{V}/users/auth/_login", json={"username": username, "password": PASSWORD}
    )
    token: str = r.json()["token"]
    return token


async def test_elevate_and_drop(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "ops", "SYSTEM_ADMIN")
    token = await _session(client, "ops")
    r = await client.post(ELEVATE, headers=bearer(token), json={"token": PASSWORD})
    assert r.status_code == 200, r.text
    assert_ece(r.json(), "TokenResponse", SPEC)
    elevated = r.json()["token"]
    assert_error(await client.get(f"{V}/user", headers=bearer(token)), 401, "root.unauthorized")
    me = await client.get(f"{V}/user", headers=bearer(elevated))
    assert_ece(me.json(), "User")
    state = me.json()["security"]["elevated_permissions"]
    assert state["enabled"] is True and "expires_at" in state
    info = await client.get(f"{V}/users/auth", headers=bearer(elevated))
    assert info.json()["has_elevated_permissions"] is True
    r = await client.delete(ELEVATE, headers=bearer(elevated))
    assert r.status_code == 200
    assert_ece(r.json(), "TokenResponse", SPEC)
    me = await client.get(f"{V}/user", headers=bearer(r.json()["token"]))
    assert me.json()["security"]["elevated_permissions"] == {"enabled": False}


async def test_elevate_refusals(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "ops", "SYSTEM_ADMIN")
    token = await _session(client, "ops")
    r = await client.post(ELEVATE, headers=bearer(token), json={"token": "wrong-password-1"})
    assert_error(r, 400, "authc.invalid_token")
    async with world.database.transaction() as db:
        user = await db.scalar(select(User).where(User.username == "ops"))
        assert user is not None and user.login_attempts == 1
        elevated = await db.scalar(select(Token.id).where(Token.elevated_until.is_not(None)))
        assert elevated is None
    assert (await client.get(f"{V}/user", headers=bearer(token))).status_code == 200
    r = await client.post(ELEVATE, headers=basic("ops"), json={"token": PASSWORD})
    assert_error(r, 400, "authc.invalid_token")
    r = await client.post(ELEVATE, headers=bearer(token), json={})
    assert_error(r, 400, "root.invalid_json_request")
    assert_error(await client.post(ELEVATE, json={"token": PASSWORD}), 401, "root.unauthorized")


async def test_elevation_unlocks_sensitive_operations(settings, database, world: World) -> None:  # type: ignore[no-untyped-def]
    from tenantry.app import create_app
    from tenantry.config import load_settings

    strict = load_settings(
        database_url=settings.database_url, environment="test", require_elevation=True
    )
    transport = httpx.ASGITransport(app=create_app(strict, database), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await with_password(world, "ops", "SYSTEM_ADMIN")
        await world.user("bob")
        token = await _session(client, "ops")
        r = await client.delete(f"{V}/users/bob", headers=bearer(token))
        assert_error(r, 449, ELEVATION_REQUIRED)
        assert (await client.get(f"{V}/users/bob", headers=bearer(token))).status_code == 200
        # Platform roles are system roles: changing them needs elevation too.
        roles = {"security": {"roles": ["ece_platform_viewer", "ece_deployment_manager"]}}
        r = await client.patch(f"{V}/users/bob", headers=bearer(token), json=roles)
        assert_error(r, 449, ELEVATION_REQUIRED)
        r = await client.get(f"{V}/users/bob", headers=bearer(token))
        assert r.json()["security"]["roles"] == []
        r = await client.post(ELEVATE, headers=bearer(token), json={"token": PASSWORD})
        elevated = r.json()["token"]
        r = await client.patch(f"{V}/users/bob", headers=bearer(elevated), json=roles)
        assert r.status_code == 200, r.text
        assert r.json()["security"]["roles"] == ["ece_platform_viewer", "ece_deployment_manager"]
        assert (await client.delete(f"{V}/users/bob", headers=bearer(elevated))).status_code == 200
        r = await client.get(f"{V}/users/bob", headers=bearer(elevated))
        assert_error(r, 404, "user.not_found")
