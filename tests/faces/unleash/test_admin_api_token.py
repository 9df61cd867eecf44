"""Unleash's admin API token is a Tenantry system API token holding SYSTEM_ADMIN: served on
/user-admin as Unleash serves its admin token, answered as Unleash answers it on the routes
about the caller (where Unleash fails with a 500, a 4xx in its words), presented raw or as
`Bearer`, and refused from its revocation on."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from tenantry.db.models import User
from tenantry.directory import system_api_tokens
from tenantry.identity.principals import system_principal
from tests.faces.routes import assert_face_error
from tests.factories import World

ADMIN = "/api/admin"


async def _admin_token(world: World, role: str = "SYSTEM_ADMIN") -> tuple[str, str]:
    """(token id, secret), made as INIT_ADMIN_API_TOKENS would be: by the operator."""
    async with world.database.transaction() as db:
        made = await system_api_tokens.create_system_api_token(
            db, system_principal(), role=role, name="admin", expires_in_days=None
        )
    assert made.secret is not None
    return made.token.id, made.secret


def raw(secret: str) -> dict[str, str]:
    return {"Authorization": secret}


async def test_it_is_unleash_admin_raw_or_bearer(client: httpx.AsyncClient, world: World) -> None:
    _, secret = await _admin_token(world)
    for headers in (raw(secret), {"Authorization": f"Bearer {secret}"}):
        r = await client.get(f"{ADMIN}/user", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["permissions"] == [{"permission": "ADMIN"}]
        user = body["user"]
        assert (user["type"], user["permissions"], user["projects"]) == ("admin", ["ADMIN"], ["*"])
        assert user["username"] == "admin" and "id" not in user


async def test_user_admin_serves_it(client: httpx.AsyncClient, world: World) -> None:
    _, secret = await _admin_token(world)
    listed = await client.get(f"{ADMIN}/user-admin", headers=raw(secret))
    assert listed.status_code == 200, listed.text
    assert "users" in listed.json() and "rootRoles" in listed.json()
    made = await client.post(
        f"{ADMIN}/user-admin",
        json={"email": "by-token@example.com", "rootRole": "Viewer", "sendEmail": False},
        headers=raw(secret),
    )
    assert made.status_code == 201, made.text
    assert made.json()["email"] == "by-token@example.com"
    async with world.database.transaction(write=False) as db:
        stored = await db.scalar(select(User).where(User.email == "by-token@example.com"))
        assert stored is not None and stored.created_by is not None
    got = await client.get(f"{ADMIN}/user-admin/{made.json()['id']}", headers=raw(secret))
    assert got.status_code == 200 and got.json()["email"] == "by-token@example.com"


async def test_a_viewer_system_token_is_no_unleash_admin(
    client: httpx.AsyncClient, world: World
) -> None:
    _, secret = await _admin_token(world, "SYSTEM_VIEWER")
    r = await client.post(
        f"{ADMIN}/user-admin", json={"email": "nope@example.com"}, headers=raw(secret)
    )
    assert_face_error("unleash", r, 403)
    assert r.json()["name"] == "PermissionError"


async def test_routes_about_the_caller_answer_as_unleash_answers_its_admin_token(
    client: httpx.AsyncClient, world: World
) -> None:
    _, secret = await _admin_token(world)
    profile = await client.get(f"{ADMIN}/user/profile", headers=raw(secret))
    assert_face_error("unleash", profile, 400)
    assert profile.json()["name"] == "BadDataError"
    assert "User id is missing" in profile.json()["message"]
    for method, path in (("GET", "/user/tokens"), ("POST", "/user/tokens")):
        body = {"description": "x", "expiresAt": "2099-01-01T00:00:00.000Z"}
        r = await client.request(method, ADMIN + path, json=body, headers=raw(secret))
        assert_face_error("unleash", r, 403)
        assert (r.json()["name"], r.json()["message"]) == (
            "ForbiddenError",
            "PATs require an authenticated user.",
        )
    splash = await client.post(f"{ADMIN}/splash/environment", headers=raw(secret))
    assert splash.status_code == 200
    assert splash.json() == {"splashId": "environment", "seen": True}
    own = await client.post(
        f"{ADMIN}/user/change-password",
        json={"password": "Str0ng-Enough!pw", "confirmPassword": "Str0ng-Enough!pw"},
        headers=raw(secret),
    )
    assert (own.status_code, own.content) == (400, b"")


async def test_where_unleash_fails_a_4xx_in_its_words(
    client: httpx.AsyncClient, world: World
) -> None:
    """Unleash answers its admin token 500 on these (UNLEASH_500 in docs/faces/unleash.md)."""
    _, secret = await _admin_token(world)
    roles = await client.get(f"{ADMIN}/user/roles?projectId=default", headers=raw(secret))
    feedback = await client.post(
        f"{ADMIN}/feedback", json={"feedbackId": "pnps", "neverShow": False}, headers=raw(secret)
    )
    for r in (roles, feedback):
        assert_face_error("unleash", r, 400)
        assert r.json()["name"] == "BadDataError"
    pat = await client.delete(f"{ADMIN}/user/tokens/1", headers=raw(secret))
    assert_face_error("unleash", pat, 403)
    assert pat.json()["name"] == "ForbiddenError"


async def test_revoked_it_is_unauthorized_at_once(client: httpx.AsyncClient, world: World) -> None:
    token_id, secret = await _admin_token(world)
    for _ in range(2):
        assert (await client.get(f"{ADMIN}/user", headers=raw(secret))).status_code == 200
    async with world.database.transaction() as db:
        await system_api_tokens.revoke_system_api_token(db, system_principal(), token_id)
    for path in ("/user", "/user-admin"):
        r = await client.get(ADMIN + path, headers=raw(secret))
        assert_face_error("unleash", r, 401)
        assert r.json()["name"] == "UnauthorizedError"
