"""What provisioning means in every other face: an IdP-managed account (astro isIdpManaged,
ECE an external realm refusing changes with user.cannot_modify_external, Unleash and native
refusing name and address changes), deactivation ending every credential at once (cached
answers included), IdP-managed teams whose members follow the identity provider."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from tenantry.db.models import User
from tests.faces.routes import assert_face_error
from tests.faces.scim.conftest import ENTERPRISE, Idp
from tests.factories import World, bearer


async def _provisioned(idp: Idp, world: World) -> tuple[dict[str, object], User, str]:
    made = await idp.create_user(
        "pat@example.com",
        displayName="Pat Doe",
        emails=[{"value": "pat@example.com", "primary": True}],
        **{ENTERPRISE: {"department": "R&D"}},
    )
    async with world.database.transaction(write=False) as db:
        user = await db.scalar(select(User).where(User.id == made["id"]))
    assert user is not None
    return made, user, await world.token(user)


async def test_every_face_shows_and_protects_an_idp_managed_account(
    client: httpx.AsyncClient, world: World, idp: Idp
) -> None:
    _, user, token = await _provisioned(idp, world)
    admin = await world.token(await world.admin())
    me = await client.get("/v1/users/self", headers=bearer(token))
    assert me.status_code == 200 and me.json()["isIdpManaged"] is True
    ece = await client.get(f"/api/v1/users/{user.username}", headers=bearer(admin))
    assert ece.status_code == 200, ece.text
    assert ece.json()["security"]["security_realm"]["type"] != "native"
    refusals = [
        ("ece", "PATCH", f"/api/v1/users/{user.username}", {"full_name": "Mallory"}),
        ("ece", "PATCH", f"/api/v1/users/{user.username}", {"email": "m@example.com"}),
        ("native", "PATCH", f"/tenantry/v1/users/{user.id}", {"fullName": "Mallory"}),
        ("native", "PATCH", f"/tenantry/v1/users/{user.id}", {"email": "m@example.com"}),
        ("native", "PATCH", f"/tenantry/v1/users/{user.id}", {"enabled": False}),
        ("native", "DELETE", f"/tenantry/v1/users/{user.id}", None),
        ("unleash", "PUT", f"/api/admin/user-admin/{user.seq}", {"name": "Mallory"}),
        ("unleash", "PUT", f"/api/admin/user-admin/{user.seq}", {"email": "m@example.com"}),
    ]
    for face, method, path, body in refusals:
        r = await client.request(method, path, json=body, headers=bearer(admin))
        assert 400 <= r.status_code < 500, f"{face} {method} {path} {body}: {r.text}"
        assert_face_error(face, r)
        if face == "ece":
            assert r.json()["errors"][0]["code"] == "user.cannot_modify_external", r.text
    async with world.database.transaction(write=False) as db:
        after = await db.scalar(select(User).where(User.id == user.id))
    assert after is not None
    assert (after.full_name, after.email, after.enabled) == ("Pat Doe", "pat@example.com", True)


async def test_deactivation_ends_every_credential_at_once(
    client: httpx.AsyncClient, world: World, idp: Idp
) -> None:
    made, user, token = await _provisioned(idp, world)
    second = await world.token(user)
    hot = [
        ("/v1/users/self", bearer(token)),
        ("/api/v1/user", bearer(second)),
        ("/api/admin/user", {"Authorization": token}),
    ]
    for path, headers in hot:  # cached after the second request
        for _ in range(2):
            assert (await client.get(path, headers=headers)).status_code == 200
    r = await idp.patch(f"/Users/{made['id']}", [{"op": "replace", "value": {"active": False}}])
    assert r.status_code == 200 and r.json()["active"] is False, r.text
    for path, headers in hot:
        assert (await client.get(path, headers=headers)).status_code == 401, path
    # reactivated, the account signs in again, but the ended credentials stay ended
    r = await idp.patch(
        f"/Users/{made['id']}", [{"op": "replace", "path": "active", "value": True}]
    )
    assert r.status_code == 200 and r.json()["active"] is True
    assert (await client.get("/v1/users/self", headers=bearer(token))).status_code == 401
    fresh = await world.token(user)
    assert (await client.get("/v1/users/self", headers=bearer(fresh))).status_code == 200


async def test_an_idp_team_follows_the_identity_provider(
    client: httpx.AsyncClient, world: World, idp: Idp
) -> None:
    made, user, _ = await _provisioned(idp, world)
    owner, owner_token = await world.member(idp.org, "ORGANIZATION_OWNER")
    r = await idp.post(
        "/Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Engineering",
            "members": [{"value": made["id"]}],
        },
    )
    assert r.status_code == 201, r.text
    group = r.json()
    team = f"/v1/organizations/{idp.org.id}/teams/{group['id']}"
    shown = await client.get(team, headers=bearer(owner_token))
    assert shown.status_code == 200 and shown.json()["isIdpManaged"] is True, shown.text
    for method, path, body in [
        ("POST", f"{team}/members", {"memberIds": [owner.id]}),
        ("DELETE", f"{team}/members/{user.id}", None),
        ("POST", team, {"name": "Renamed"}),
        ("DELETE", team, None),
    ]:
        r = await client.request(method, path, json=body, headers=bearer(owner_token))
        assert 400 <= r.status_code < 500, f"{method} {path}: {r.text}"
        assert_face_error("astro", r)
    members = (await idp.get(f"/Groups/{group['id']}")).json()["members"]
    assert [m["value"] for m in members] == [made["id"]]
