"""System API tokens through the native face (/tenantry/v1/system/api-tokens) and what every
face answers one: served by its SYSTEM role where a route is about the directory, refused as
"no user" where a route is about the caller, and refused everywhere from its revocation on."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from tenantry.db.models import Token
from tests.faces.routes import assert_face_error
from tests.factories import World, bearer

PATH = "/tenantry/v1/system/api-tokens"


async def _made(
    client: httpx.AsyncClient, admin_token: str, role: str = "SYSTEM_ADMIN"
) -> dict[str, str]:
    r = await client.post(
        PATH, json={"role": role, "name": "ci", "expiresInDays": 30}, headers=bearer(admin_token)
    )
    assert r.status_code == 201, r.text
    body: dict[str, str] = r.json()
    return body


async def test_an_admin_makes_lists_gets_and_revokes_one(
    client: httpx.AsyncClient, world: World
) -> None:
    admin_token = await world.token(await world.admin())
    made = await _made(client, admin_token)
    secret = made["token"]
    assert secret.startswith("tnt_") and made["role"] == "SYSTEM_ADMIN"
    assert made["shortToken"] == secret[4:12] and made["expiresAt"] is not None
    listed = await client.get(PATH, headers=bearer(admin_token))
    assert listed.status_code == 200
    assert [(t["id"], t["role"]) for t in listed.json()["tokens"]] == [(made["id"], "SYSTEM_ADMIN")]
    got = await client.get(f"{PATH}/{made['id']}", headers=bearer(admin_token))
    assert got.status_code == 200 and got.json()["name"] == "ci"
    for body in (listed.json()["tokens"][0], got.json()):
        assert "token" not in body and secret not in str(body)
    # the token itself is served by its role (it may read the system tokens, too)
    assert (await client.get(PATH, headers=bearer(secret))).status_code == 200
    gone = await client.delete(f"{PATH}/{made['id']}", headers=bearer(admin_token))
    assert gone.status_code == 204
    refused = await client.get(PATH, headers=bearer(secret))
    assert_face_error("native", refused, 401)
    assert (await client.get(PATH, headers=bearer(admin_token))).json()["tokens"] == []
    again = await client.delete(f"{PATH}/{made['id']}", headers=bearer(admin_token))
    assert_face_error("native", again, 404)


async def test_others_are_refused_in_the_native_error_body(
    client: httpx.AsyncClient, world: World
) -> None:
    editor = await world.user()
    await world.system_role(editor, "SYSTEM_EDITOR")
    org = await world.org()
    _, owner_token = await world.member(org, "ORGANIZATION_OWNER")
    made = await _made(client, await world.token(await world.admin()))
    for token in (await world.token(editor), owner_token):
        r = await client.post(PATH, json={"role": "SYSTEM_VIEWER"}, headers=bearer(token))
        assert_face_error("native", r, 403)
        assert "system.apiTokens.create" in r.json()["detail"]
        r = await client.delete(f"{PATH}/{made['id']}", headers=bearer(token))
        assert_face_error("native", r, 403)
    listed = await client.get(PATH, headers=bearer(owner_token))
    assert_face_error("native", listed, 403)
    # a token does not mint another, even a SYSTEM_ADMIN one
    r = await client.post(PATH, json={"role": "SYSTEM_VIEWER"}, headers=bearer(made["token"]))
    assert_face_error("native", r, 403)
    assert_face_error("native", await client.get(PATH), 401)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "role"),
        ({"role": "ORGANIZATION_OWNER"}, "role"),
        ({"role": "SYSTEM_ADMIN", "expiresInDays": 0}, "expiresInDays"),
        ({"role": "SYSTEM_ADMIN", "expiresInDays": 3651}, "expiresInDays"),
        ({"role": "SYSTEM_ADMIN", "name": "a\u0007b"}, "name"),
        ({"role": "SYSTEM_ADMIN", "secret": "mine"}, "secret"),
        ({"role": ["SYSTEM_ADMIN"]}, "role"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient, world: World, body: dict[str, object], field: str
) -> None:
    admin_token = await world.token(await world.admin())
    r = await client.post(PATH, json=body, headers=bearer(admin_token))
    assert_face_error("native", r, 400)
    assert field in [e["field"] for e in r.json()["errors"]], r.json()
    async with world.database.transaction(write=False) as db:
        assert list(await db.scalars(select(Token).where(Token.kind == "api"))) == []
    bad_id = await client.get(f"{PATH}/not-an-id", headers=bearer(admin_token))
    assert_face_error("native", bad_id, 400)


async def test_every_face_serves_it_by_its_role_and_as_no_user(
    client: httpx.AsyncClient, world: World
) -> None:
    """native and ece serve it per its SYSTEM role; astro as an API token (it may read
    organizations, it has no self); routes about the caller refuse it in the face's words."""
    org = await world.org()
    viewer = await _made(client, await world.token(await world.admin()), "SYSTEM_VIEWER")
    secret = viewer["token"]
    served = [
        ("native", "/tenantry/v1/users"),
        ("native", f"/tenantry/v1/organizations/{org.id}"),
        ("astro", f"/v1/organizations/{org.id}"),
        ("ece", "/api/v1/users"),
    ]
    for _face, path in served:
        r = await client.get(path, headers=bearer(secret))
        assert r.status_code == 200, (path, r.text)
    # a viewer's role: reading, not writing
    new_user = {"username": "x@example.com"}
    r = await client.post("/tenantry/v1/users", json=new_user, headers=bearer(secret))
    assert_face_error("native", r, 403)
    astro_self = await client.get("/v1/users/self", headers=bearer(secret))
    assert_face_error("astro", astro_self, 403)
    ece_self = await client.get("/api/v1/user", headers=bearer(secret))
    assert_face_error("ece", ece_self, 404)
    assert ece_self.json()["errors"][0]["code"] == "user.not_found"
    # SCIM takes an organization's SCIM token only (identity/scim_tokens.py)
    scim = await client.get("/scim/v2/Users", headers=bearer(secret))
    assert scim.status_code == 401 and "Errors" not in scim.text
    assert scim.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    own = await client.get("/tenantry/v1/me/tokens", headers=bearer(secret))
    assert_face_error("native", own, 400)
    assert "personal tokens belong to users" in own.json()["detail"]


async def test_revocation_is_seen_by_the_next_request_even_on_the_hot_path(
    client: httpx.AsyncClient, world: World
) -> None:
    admin_token = await world.token(await world.admin())
    made = await _made(client, admin_token)
    hot = [("unleash", "/api/admin/user"), ("ece", "/api/v1/users"), ("native", PATH)]
    for _ in range(3):  # warm every cache that could remember the token
        for _face, path in hot:
            assert (await client.get(path, headers=bearer(made["token"]))).status_code == 200
    r = await client.delete(f"{PATH}/{made['id']}", headers=bearer(admin_token))
    assert r.status_code == 204
    for face, path in hot:
        assert_face_error(face, await client.get(path, headers=bearer(made["token"])), 401)
