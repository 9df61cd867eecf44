"""ece API keys: personal tokens under ECE's schema, for yourself and (admins) for anyone."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from sqlalchemy import func, select

from tenantry.db.models import Token
from tests.faces.ece.conftest import V, apikey, basic, with_password
from tests.faces.ece.spec import assert_ece, assert_error
from tests.factories import World, bearer

KEYS = f"{V}/users/auth/keys"


async def _create(client: httpx.AsyncClient, user: str, **body: object) -> dict[str, object]:
    r = await client.post(KEYS, headers=basic(user), json={"description": "ci", **body})
    assert r.status_code == 201, r.text
    assert_ece(r.json(), "ApiKeyResponse")
    created: dict[str, object] = r.json()
    return created


async def _live_tokens(world: World) -> int:
    async with world.database.transaction() as db:
        return int(
            await db.scalar(
                select(func.count()).select_from(Token).where(Token.revoked_at.is_(None))
            )
            or 0
        )


async def test_own_keys_lifecycle(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "ann")
    created = await _create(client, "ann", expiration="3h")
    secret, key_id = str(created["key"]), str(created["id"])
    assert created["user_id"] == "ann" and created["description"] == "ci"
    expires = datetime.fromisoformat(str(created["expiration_date"]))
    created_at = datetime.fromisoformat(str(created["creation_date"]))
    assert timedelta(hours=2, minutes=59) < expires - created_at <= timedelta(hours=3, seconds=1)
    me = await client.get(f"{V}/user", headers=apikey(secret))
    assert me.status_code == 200 and me.json()["user_name"] == "ann"
    listed = await client.get(KEYS, headers=apikey(secret))
    assert listed.status_code == 200
    assert_ece(listed.json(), "ApiKeysResponse")
    assert [k["id"] for k in listed.json()["keys"]] == [key_id]
    assert "key" not in listed.json()["keys"][0]  # the secret is shown once
    one = await client.get(f"{KEYS}/{key_id}", headers=basic("ann"))
    assert one.status_code == 200 and one.json()["id"] == key_id
    # The same token is a Tenantry personal token (native face).
    native = await client.get("/tenantry/v1/me/tokens", headers=bearer(secret))
    assert key_id in [t["id"] for t in native.json()["tokens"]]
    r = await client.delete(f"{KEYS}/{key_id}", headers=basic("ann"))
    assert r.status_code == 200 and r.json() == {}
    assert_error(await client.get(f"{V}/user", headers=apikey(secret)), 401, "root.unauthorized")
    assert (await client.get(KEYS, headers=basic("ann"))).json() == {"keys": []}
    r = await client.get(f"{KEYS}/{key_id}", headers=basic("ann"))
    assert_error(r, 404, "api_keys.key_not_found")


async def test_key_refusals_write_nothing(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "ann")
    await with_password(world, "bob")
    bobs = await _create(client, "bob")
    before = await _live_tokens(world)
    # ECE documents one code for a refused key request; the field says what was wrong.
    for body, code, field in (
        ({"description": "x", "expiration": "forever"}, "api_keys.invalid_input", "expiration"),
        ({"description": "x", "expiration": "0d"}, "api_keys.invalid_input", "expiration"),
        ({"description": "x", "expiration": "11y"}, "api_keys.invalid_input", "expiration"),
        ({"description": "  "}, "api_keys.invalid_input", "description"),
        ({}, "root.invalid_json_request", "description"),
    ):
        r = await client.post(KEYS, headers=basic("ann"), json=body)
        assert assert_error(r, 400, code)["errors"][0]["fields"] == [field], r.text
    # Someone else's key does not exist for you, alone or in a batch (nothing is revoked).
    mine = await _create(client, "ann")
    r = await client.request(
        "DELETE", KEYS, headers=basic("ann"), json={"keys": [mine["id"], bobs["id"]]}
    )
    assert_error(r, 404, "api_keys.key_not_found")
    assert_error(
        await client.get(f"{KEYS}/{bobs['id']}", headers=basic("ann")),
        404,
        "api_keys.key_not_found",
    )
    assert await _live_tokens(world) == before + 1
    r = await client.request("DELETE", KEYS, headers=basic("ann"), json={"keys": [mine["id"]]})
    assert r.status_code == 200
    assert await _live_tokens(world) == before


async def test_admin_manages_every_users_keys(client: httpx.AsyncClient, world: World) -> None:
    await with_password(world, "root", "SYSTEM_ADMIN")
    await with_password(world, "ann")
    await with_password(world, "bob")
    a1 = await _create(client, "ann")
    a2 = await _create(client, "ann")
    b1 = await _create(client, "bob")
    r = await client.get(f"{KEYS}/_all", headers=basic("root"))
    assert r.status_code == 200
    assert_ece(r.json(), "ApiKeysResponse")
    assert {k["id"] for k in r.json()["keys"]} == {a1["id"], a2["id"], b1["id"]}
    r = await client.get(f"{V}/users/ann/auth/keys", headers=basic("root"))
    assert {k["id"] for k in r.json()["keys"]} == {a1["id"], a2["id"]}
    r = await client.get(f"{V}/users/ann/auth/keys/{a1['id']}", headers=basic("root"))
    assert r.status_code == 200 and r.json()["user_id"] == "ann"
    r = await client.get(f"{V}/users/ann/auth/keys/{b1['id']}", headers=basic("root"))
    assert_error(r, 404, "api_keys.key_not_found")
    assert_error(
        await client.get(f"{V}/users/ghost/auth/keys", headers=basic("root")),
        404,
        "api_keys.user_not_found",
    )
    # Without system rights: other users do not exist, the _all list is forbidden.
    assert_error(
        await client.get(f"{V}/users/ann/auth/keys", headers=basic("bob")),
        404,
        "api_keys.user_not_found",
    )
    assert_error(
        await client.get(f"{KEYS}/_all", headers=basic("bob")), 403, "root.unauthorized.rbac"
    )
    assert (await client.get(f"{V}/users/bob/auth/keys", headers=basic("bob"))).status_code == 200
    r = await client.delete(f"{V}/users/ann/auth/keys/{a1['id']}", headers=basic("root"))
    assert r.status_code == 200
    r = await client.request(
        "DELETE",
        f"{KEYS}/_all",
        headers=basic("root"),
        json={"user_api_keys": [{"user_id": "bob", "api_key_id": b1["id"]}]},
    )
    assert r.status_code == 200
    r = await client.delete(f"{V}/users/ann/auth/keys", headers=basic("root"))
    assert r.status_code == 200
    assert (await client.get(f"{KEYS}/_all", headers=basic("root"))).json() == {"keys": []}


async def test_expiry_cap_is_the_domains(client: httpx.AsyncClient, world: World) -> None:
    """One cap for personal tokens, whichever face mints them (3650 days): ECE's body, and
    no token written, above it."""
    await with_password(world, "ann")
    before = await _live_tokens(world)
    for expiration in ("3651d", "522w", "11y", "999999y"):
        r = await client.post(
            KEYS, headers=basic("ann"), json={"description": "x", "expiration": expiration}
        )
        body = assert_error(r, 400, "api_keys.invalid_input")
        assert body["errors"][0]["fields"] == ["expiration"]
    assert await _live_tokens(world) == before
    created = await _create(client, "ann", expiration="3650d")
    expires = datetime.fromisoformat(str(created["expiration_date"]))
    made = datetime.fromisoformat(str(created["creation_date"]))
    assert timedelta(days=3649, hours=23) < expires - made <= timedelta(days=3650)
    r = await client.post(KEYS, headers=basic("ann"), json={"description": "x" * 257})
    body = assert_error(r, 400, "api_keys.invalid_input")
    assert body["errors"][0]["fields"] == ["description"]
    assert await _live_tokens(world) == before + 1


async def test_a_viewer_sees_every_key_but_revokes_none(
    client: httpx.AsyncClient, world: World
) -> None:
    """A platform viewer may list every user's keys (system.users.tokens.list) but not revoke
    them: ECE's 403 root.unauthorized.rbac (the keys exist for them; a "not found" would be
    untrue), and every key still works."""
    await with_password(world, "viewer", "SYSTEM_VIEWER")
    await with_password(world, "ann")
    key = await _create(client, "ann")
    r = await client.get(f"{V}/users/ann/auth/keys/{key['id']}", headers=basic("viewer"))
    assert r.status_code == 200, r.text
    before = await _live_tokens(world)
    for method, path, body in (
        ("DELETE", f"{V}/users/ann/auth/keys/{key['id']}", None),
        ("DELETE", f"{V}/users/ann/auth/keys", None),
        (
            "DELETE",
            f"{KEYS}/_all",
            {"user_api_keys": [{"user_id": "ann", "api_key_id": key["id"]}]},
        ),
    ):
        r = await client.request(method, path, headers=basic("viewer"), json=body)
        assert_error(r, 403, "root.unauthorized.rbac")
    assert await _live_tokens(world) == before
    r = await client.get(f"{V}/user", headers=apikey(str(key["key"])))
    assert r.status_code == 200, r.text
