"""Everything is one directory: what one face does, every other face sees at once."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tenantry.clock import utcnow
from tenantry.faces.unleash.errors import BAD_CREDENTIAL
from tests.faces.ece.spec import assert_error
from tests.faces.errors import BAD_TOKEN, astro_error, native_error, unleash_error
from tests.factories import World, bearer

V = "/tenantry/v1"


def _token_refused(path: str, r: httpx.Response) -> None:
    """A token of a disabled user, refused in each face's words for an unusable token."""
    if path.startswith("/v1/"):
        astro_error(r, 401, BAD_TOKEN)
    elif path.startswith("/api/v1/"):
        assert assert_error(r, 401, "root.unauthorized")["errors"][0]["message"] == BAD_TOKEN
    elif path.startswith("/api/admin/"):
        unleash_error(r, 401, "UnauthorizedError", BAD_CREDENTIAL)
    else:
        native_error(r, 401, BAD_TOKEN)


async def test_a_user_created_through_ece_appears_in_astro_and_unleash(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = bearer(await world.token(await world.admin()))
    r = await client.post(
        "/api/v1/users",
        json={
            "user_name": "edith",
            "full_name": "Edith E",
            "email": "edith@example.com",
            "security": {"roles": ["ece_platform_viewer"], "password": "edith-password-9"},
        },
        headers=admin,
    )
    assert r.status_code == 200, r.text
    listed = (await client.get(f"{V}/users?q=edith", headers=admin)).json()["users"]
    assert [(u["username"], u["fullName"]) for u in listed] == [("edith", "Edith E")]
    user_id, seq = listed[0]["id"], listed[0]["seq"]
    unleash = await client.get(
        f"/api/admin/user-admin/{seq}", headers={"Authorization": admin["Authorization"]}
    )
    assert unleash.status_code == 200 and unleash.json()["username"] == "edith"
    assert unleash.json()["rootRole"] == 3  # a platform viewer is an Unleash Viewer
    org = await world.org()
    r = await client.post(
        f"/v1/organizations/{org.id}/users/{user_id}/roles",
        json={"organizationRole": "ORGANIZATION_MEMBER"},
        headers=admin,
    )
    assert r.status_code == 200
    astro = await client.get(f"/v1/organizations/{org.id}/users/{user_id}", headers=admin)
    assert astro.json()["username"] == "edith" and astro.json()["fullName"] == "Edith E"


async def test_a_workspace_role_granted_through_astro_reaches_unleash_and_ece(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    user = await world.user("wanda@example.com")
    token = await world.token(user)
    before = (await client.get("/api/admin/user", headers={"Authorization": token})).json()
    assert not any(p.get("project") == ws.id for p in before["permissions"])
    ece_before = await client.get("/api/v1/user", headers={"Authorization": f"ApiKey {token}"})
    assert ece_before.status_code == 200
    await world.roles(org, user, workspaces=[(ws.id, "WORKSPACE_OWNER")])
    after = (await client.get("/api/admin/user", headers={"Authorization": token})).json()
    assert any(p.get("project") == ws.id for p in after["permissions"])
    # a SYSTEM role granted through ece changes what unleash and ece report
    admin = bearer(await world.token(await world.admin()))
    r = await client.patch(
        "/api/v1/users/wanda@example.com",
        json={"security": {"roles": ["ece_platform_admin"]}},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    me = (await client.get("/api/admin/user", headers={"Authorization": token})).json()
    assert me["permissions"] == [{"permission": "ADMIN"}]
    ece = (await client.get("/api/v1/user", headers={"Authorization": f"ApiKey {token}"})).json()
    assert ece["security"]["roles"] == ["ece_platform_admin"]
    assert len(ece["security"]["permissions"]) > len(ece_before.json()["security"]["permissions"])


async def test_an_unleash_pat_works_as_an_ece_api_key_and_an_astro_bearer(
    client: httpx.AsyncClient, world: World
) -> None:
    user = await world.user("pat@example.com")
    token = await world.token(user)
    r = await client.post(
        "/api/admin/user/tokens",
        headers={"Authorization": token},
        json={"description": "ci", "expiresAt": (utcnow() + timedelta(days=365)).isoformat()},
    )
    assert r.status_code == 201, r.text
    pat = r.json()["secret"]
    ece = await client.get("/api/v1/user", headers={"Authorization": f"ApiKey {pat}"})
    assert ece.status_code == 200 and ece.json()["user_name"] == "pat@example.com"
    astro = await client.get("/v1/users/self", headers=bearer(pat))
    assert astro.status_code == 200 and astro.json()["id"] == user.id


async def test_a_user_disabled_anywhere_is_refused_everywhere(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = bearer(await world.token(await world.admin()))
    user = await world.user("dora@example.com")
    token = await world.token(user)
    probes = [
        ("/v1/users/self", bearer(token)),
        ("/api/v1/user", {"Authorization": f"ApiKey {token}"}),
        ("/api/admin/user", {"Authorization": token}),
        (f"{V}/users/{user.id}", bearer(token)),
    ]
    for path, headers in probes:
        assert (await client.get(path, headers=headers)).status_code == 200, path
    r = await client.patch(
        "/api/v1/users/dora@example.com", json={"security": {"enabled": False}}, headers=admin
    )
    assert r.status_code == 200, r.text
    for path, headers in probes:
        refused = await client.get(path, headers=headers)
        assert refused.status_code == 401, path
        _token_refused(path, refused)
    async with world.database.transaction() as db:
        from tenantry.directory import users
        from tenantry.identity.principals import system_principal

        await users.update_user(db, system_principal(), user.id, users.UserFields(enabled=True))
    assert (
        await client.get("/api/admin/user", headers={"Authorization": token})
    ).status_code == 200
