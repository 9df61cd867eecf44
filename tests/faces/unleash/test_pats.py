"""/api/admin/user/tokens: PATs are Tenantry personal tokens (captures 09, 32)."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from tenantry.db.models import Token
from tests.faces.unleash import spec
from tests.faces.unleash.test_me import (
    PASSWORD,
    admin_named_admin,
    same_as_capture,
    viewer,
    with_password,
)
from tests.factories import World, bearer

PATS = "/api/admin/user/tokens"


async def session(client: httpx.AsyncClient, username: str) -> None:
    r = await client.post("/auth/simple/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    client.cookies.set("unleash-session", r.cookies["unleash-session"])


async def test_admin_pat_through_session(client: httpx.AsyncClient, world: World) -> None:
    admin = await admin_named_admin(world)
    await with_password(world, admin)
    await session(client, "admin")
    r = await client.post(PATS, json=spec.capture(9)["request"]["body"])
    body = same_as_capture(9, r, "patSchema")
    assert body["expiresAt"] == "2099-01-01T00:00:00.000Z" and body["userId"] == admin.seq
    client.cookies.clear()
    me = same_as_capture(
        10, await client.get("/api/admin/user", headers={"Authorization": body["secret"]})
    )
    assert me["user"]["id"] == admin.seq
    native = await client.get("/v1/users/self", headers=bearer(body["secret"]))
    assert native.status_code == 200, native.text
    async with world.database.transaction() as db:
        token = await db.scalar(select(Token).where(Token.name == "peer-capture"))
        assert token is not None and token.kind == "personal" and token.user_id == admin.id


async def test_viewer_pat_list_and_delete(client: httpx.AsyncClient, world: World) -> None:
    user = await viewer(world)
    await with_password(world, user)
    await session(client, "peer.user@example.com")
    created = same_as_capture(32, await client.post(PATS, json=spec.capture(32)["request"]["body"]))
    listed = (await client.get(PATS)).json()["pats"]
    assert [p["id"] for p in listed] == [created["id"]] and "secret" not in listed[0]
    # As Unleash's web client sends every call (a cookie-only change must say JSON: CSRF).
    as_the_ui = {"content-type": "application/json"}
    assert (await client.delete(f"{PATS}/{created['id']}", headers=as_the_ui)).status_code == 200
    assert (await client.get(PATS)).json()["pats"] == []
    client.cookies.clear()
    gone = await client.get("/api/admin/user", headers={"Authorization": created["secret"]})
    assert gone.status_code == 401 and gone.json()["name"] == "UnauthorizedError"


async def test_bad_pat_bodies_write_nothing(client: httpx.AsyncClient, world: World) -> None:
    user = await viewer(world)
    auth = {"Authorization": await world.token(user)}
    for body in (
        {"description": "x"},
        {"description": "x", "expiresAt": "2000-01-01T00:00:00Z"},
        {"description": "x", "expiresAt": "soon"},
        {"expiresAt": "2099-01-01T00:00:00Z"},
        {"description": "x", "expiresAt": "2099-01-01T00:00:00Z", "bogus": 1},
    ):
        r = await client.post(PATS, headers=auth, json=body)
        assert r.status_code == 400 and r.json()["name"] == "BadDataError", body
    listed = (await client.get(PATS, headers=auth)).json()["pats"]
    assert [p["description"] for p in listed] == ["test"]  # only the factory's token
    assert (await client.delete(f"{PATS}/12345", headers=auth)).status_code == 404
