"""A SCIM token is good on /scim/v2 only, and no other credential is good there: both
directions, through every face (the hot paths twice, so that a cached answer is tried too)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tenantry.clock import utcnow
from tenantry.identity import tokens
from tests.faces.routes import assert_face_error
from tests.faces.scim.conftest import BASE, Idp, assert_scim_error
from tests.factories import World, bearer


def _other_faces(org_id: str) -> list[tuple[str, str, str, dict[str, str]]]:
    """(face, method, path, extra headers) of reads and writes on every other face."""
    return [
        ("astro", "GET", "/v1/users/self", {}),
        ("astro", "GET", f"/v1/organizations/{org_id}/users", {}),
        ("astro", "POST", f"/v1/organizations/{org_id}/workspaces", {}),
        ("native", "GET", f"/tenantry/v1/organizations/{org_id}", {}),
        ("native", "POST", f"/tenantry/v1/organizations/{org_id}/scim-tokens", {}),
        ("ece", "GET", "/api/v1/user", {}),
        ("ece", "GET", "/api/v1/users", {}),
        ("unleash", "GET", "/api/admin/user", {}),
        ("unleash", "GET", "/api/admin/user-admin", {}),
    ]


async def test_a_scim_token_is_refused_by_every_other_face(
    client: httpx.AsyncClient, idp: Idp
) -> None:
    for face, method, path, extra in _other_faces(idp.org.id):
        for _ in range(2):  # the second time a cache would answer, if it held anything
            r = await client.request(method, path, headers=bearer(idp.token) | extra, json={})
            assert r.status_code == 401, f"{face} {method} {path}: {r.status_code} {r.text}"
            assert_face_error(face, r)
    # ECE's ApiKey scheme and Unleash's raw header are no way in either
    r = await client.get("/api/v1/user", headers={"Authorization": f"ApiKey {idp.token}"})
    assert r.status_code == 401
    r = await client.get("/api/admin/user", headers={"Authorization": idp.token})
    assert r.status_code == 401


@pytest.mark.parametrize("kind", ["personal", "session", "api", "none", "garbage", "basic"])
async def test_no_other_credential_is_good_on_scim(
    client: httpx.AsyncClient, world: World, idp: Idp, kind: str
) -> None:
    org = idp.org
    owner, personal = await world.member(org, "ORGANIZATION_OWNER")
    await world.system_role(owner, "SYSTEM_ADMIN")  # even the most powerful user
    headers: dict[str, str]
    if kind == "personal":
        headers = bearer(personal)
    elif kind == "session":
        async with world.database.transaction() as db:
            now = utcnow()
            minted = await tokens.mint_session(
                db, owner.id, now, now + timedelta(hours=1), now + timedelta(hours=8)
            )
        headers = bearer(minted.secret)
    elif kind == "api":
        view = await world.api_token(org, creator=owner, role="ORGANIZATION_OWNER")
        headers = bearer(view.secret)
    elif kind == "garbage":
        headers = bearer("tnt_" + "x" * 43)
    elif kind == "basic":
        headers = {"Authorization": "Basic YWRtaW46cGFzc3dvcmQ="}
    else:
        headers = {}
    for method, path in [
        ("GET", "/Users"),
        ("GET", "/Groups"),
        ("GET", "/ServiceProviderConfig"),
        ("GET", "/Schemas"),
        ("POST", "/Users"),
        ("POST", "/Bulk"),
    ]:
        body = {"userName": "x@example.com"} if method == "POST" else None
        r = await client.request(method, BASE + path, headers=headers, json=body)
        assert_scim_error(r, 401)
        assert r.headers["www-authenticate"].lower().startswith("bearer")
    r = await client.get(BASE + "/Users", headers=bearer(idp.token))
    assert r.status_code == 200


async def test_two_authorization_headers_are_refused(client: httpx.AsyncClient, idp: Idp) -> None:
    headers = [("authorization", f"Bearer {idp.token}"), ("authorization", f"Bearer {idp.token}")]
    r = await client.get(BASE + "/Users", headers=headers)
    assert_scim_error(r, 401)


async def test_an_expired_or_revoked_scim_token_is_refused(
    client: httpx.AsyncClient, world: World, idp: Idp
) -> None:
    from sqlalchemy import update

    from tenantry.db.models import Token

    async with world.database.transaction() as db:
        await db.execute(
            update(Token)
            .where(Token.kind == "scim")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert_scim_error(await idp.get("/Users"), 401)
