"""Astro Platform organizations: list (filters, sorts, paging, visibility), get, update."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from tenantry.db.models import AuditEvent, Organization, Token, User
from tenantry.faces.astro.render_platform import subject
from tests.factories import World, bearer
from tests.spec import assert_astro

PREFIXES = ("/v1", "/iam/v1beta1", "/platform/v1beta1")
SYSTEM = {"id": ""}  # made by the system principal (CLI, bootstrap): no user or token
UPDATE = {"name": "Renamed", "billingEmail": "billing@acme.io", "isScimEnabled": True}


def _profile(user: User) -> dict[str, str]:
    return {
        "id": user.id,
        "subjectType": "USER",
        "username": user.username,
        "fullName": user.full_name,
        "avatarUrl": user.avatar_url,
    }


def _assert_error(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    body: dict[str, object] = r.json()
    assert_astro(body, "Error")
    assert body["statusCode"] == status and body["requestId"] == r.headers["x-request-id"]
    return body


async def _org_row(world: World, org_id: str) -> Organization:
    async with world.database.transaction() as db:
        org = await db.get(Organization, org_id)
        assert org is not None
        return org


async def test_list_shows_only_the_callers_organizations(
    client: httpx.AsyncClient, world: World
) -> None:
    mine = await world.org("Mine")
    await world.org("Theirs")
    _, token = await world.member(mine)
    for prefix in PREFIXES:
        r = await client.get(f"{prefix}/organizations", headers=bearer(token))
        assert r.status_code == 200, r.text
        body = r.json()
        assert_astro(body, "OrganizationsPaginated")
        assert [o["id"] for o in body["organizations"]] == [mine.id]
        assert body["totalCount"] == 1 and body["limit"] == 20 and body["offset"] == 0
    admin = await world.admin()
    r = await client.get(
        "/v1/organizations?sorts=name:asc", headers=bearer(await world.token(admin))
    )
    assert [o["name"] for o in r.json()["organizations"]] == ["Mine", "Theirs"]


async def test_list_filters_sorts_and_pages(client: httpx.AsyncClient, world: World) -> None:
    admin = await world.admin()
    token = await world.token(admin)
    await world.org("Bravo", support_plan="PREMIUM", product="HOSTED")
    await world.org("Alpha", support_plan="TRIAL", product="HYBRID")
    await world.org("Charlie", support_plan="PREMIUM", product="HYBRID")

    async def names(query: str) -> list[str]:
        r = await client.get(f"/platform/v1beta1/organizations?{query}", headers=bearer(token))
        assert r.status_code == 200, r.text
        assert_astro(r.json(), "OrganizationsPaginated")
        return [o["name"] for o in r.json()["organizations"]]

    assert await names("sorts=name:asc") == ["Alpha", "Bravo", "Charlie"]
    assert await names("sorts=name:desc") == ["Charlie", "Bravo", "Alpha"]
    assert await names("supportPlan=PREMIUM&sorts=name:asc") == ["Bravo", "Charlie"]
    assert await names("product=HYBRID&sorts=name:asc") == ["Alpha", "Charlie"]
    assert await names("supportPlan=PREMIUM&product=HYBRID") == ["Charlie"]
    assert await names("supportPlan=BUSINESS_CRITICAL") == []
    pages = [await names(f"sorts=name:asc&limit=2&offset={o}") for o in (0, 2, 4)]
    assert pages == [["Alpha", "Bravo"], ["Charlie"], []]
    r = await client.get("/v1/organizations?limit=0", headers=bearer(token))
    assert r.json() == {"organizations": [], "limit": 0, "offset": 0, "totalCount": 3}
    r = await client.get("/v1/organizations?limit=1&supportPlan=PREMIUM", headers=bearer(token))
    assert r.json()["totalCount"] == 2 and len(r.json()["organizations"]) == 1


async def test_list_rejects_bad_parameters(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    _, token = await world.member(org)
    for query in (
        "supportPlan=GOLD",
        "supportPlan=premium",
        "product=CLOUD",
        "limit=1001",
        "limit=-1",
        "limit=ten",
        "offset=-1",
        "sorts=name",
        "sorts=id:asc",
        "sorts=name:up",
        "sorts=",
    ):
        r = await client.get(f"/v1/organizations?{query}", headers=bearer(token))
        body = _assert_error(r, 400)
        assert body["fieldErrors"], query


async def test_get_organization(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org("Acme", support_plan="STANDARD", product="HOSTED", billing_email="b@a.io")
    _, token = await world.member(org)
    for prefix in PREFIXES:
        r = await client.get(f"{prefix}/organizations/{org.id}", headers=bearer(token))
        assert r.status_code == 200, r.text
        body = r.json()
        assert_astro(body, "Organization")
        row = await _org_row(world, org.id)
        assert body == {
            "id": org.id,
            "name": "Acme",
            "billingEmail": "b@a.io",
            "isScimEnabled": False,
            "product": "HOSTED",
            "status": "ACTIVE",
            "supportPlan": "STANDARD",
            "createdAt": row.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "updatedAt": row.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "createdBy": SYSTEM,
            "updatedBy": SYSTEM,
        }
    r = await client.get(f"/v1/organizations/{org.id}?isLookUpOnly=true", headers=bearer(token))
    assert r.status_code == 200 and r.json()["id"] == org.id
    _assert_error(
        await client.get(f"/v1/organizations/{org.id}?isLookUpOnly=maybe", headers=bearer(token)),
        400,
    )


async def test_get_defaults_and_user_creator(client: httpx.AsyncClient, world: World) -> None:
    """An organization a user created names them; one with no plan given is on BASIC."""
    admin = await world.user("root@acme.io", "Root", avatar_url="https://a.io/r.png")
    await world.system_role(admin, "SYSTEM_ADMIN")
    token = await world.token(admin)
    r = await client.post(
        "/tenantry/v1/organizations", json={"name": "Made"}, headers=bearer(token)
    )
    assert r.status_code == 201, r.text
    org_id = r.json()["id"]
    r = await client.get(f"/v1/organizations/{org_id}", headers=bearer(token))
    body = r.json()
    assert_astro(body, "Organization")
    assert body["supportPlan"] == "BASIC" and "billingEmail" not in body and "product" not in body
    assert body["createdBy"] == body["updatedBy"] == _profile(admin)
    assert body["createdBy"]["avatarUrl"] == "https://a.io/r.png"


async def test_get_hides_other_organizations(client: httpx.AsyncClient, world: World) -> None:
    mine, theirs = await world.org("Mine"), await world.org("Theirs")
    _, token = await world.member(mine, "ORGANIZATION_OWNER")
    for org_id in (theirs.id, "cnope00000000000000000000"):
        body = _assert_error(
            await client.get(f"/v1/organizations/{org_id}", headers=bearer(token)), 404
        )
        assert body["message"] == "organization not found"
    for bad in ("NOT-AN-ID", "c" * 26, "Cabcdefghijklmnopqrstuvwx"):
        _assert_error(await client.get(f"/v1/organizations/{bad}", headers=bearer(token)), 400)


async def test_endpoints_require_a_token(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    for method, url, body in (
        ("GET", "/v1/organizations", None),
        ("GET", f"/v1/organizations/{org.id}", None),
        ("POST", f"/v1/organizations/{org.id}", UPDATE),
    ):
        for headers in ({}, {"Authorization": "Bearer tnt_nope"}):
            r = await client.request(method, url, json=body, headers=headers)
            _assert_error(r, 401)
            assert r.headers["www-authenticate"] == "Bearer"
    assert (await _org_row(world, org.id)).name == "Acme"


async def test_update_organization(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org("Acme", support_plan="PREMIUM")
    owner, token = await world.member(org, "ORGANIZATION_OWNER", full_name="Olive Owner")
    r = await client.post(
        f"/platform/v1beta1/organizations/{org.id}", json=UPDATE, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert_astro(body, "Organization")
    assert {k: body[k] for k in UPDATE} == UPDATE
    assert body["supportPlan"] == "PREMIUM"  # not part of the update request: unchanged
    assert body["updatedBy"] == _profile(owner) and body["createdBy"] == SYSTEM
    got = (await client.get(f"/v1/organizations/{org.id}", headers=bearer(token))).json()
    assert got == body
    row = await _org_row(world, org.id)
    assert row.updated_at >= row.created_at and row.updated_by == owner.id
    async with world.database.transaction() as db:
        events = await db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "organization.update", AuditEvent.target_id == org.id)
        )
    assert events == 1


async def test_update_is_refused_to_members_and_outsiders(
    client: httpx.AsyncClient, world: World
) -> None:
    org, other = await world.org("Acme"), await world.org("Other")
    _, member_token = await world.member(org, "ORGANIZATION_MEMBER")
    _, outsider_token = await world.member(other, "ORGANIZATION_OWNER")
    url = f"/v1/organizations/{org.id}"
    body = _assert_error(await client.post(url, json=UPDATE, headers=bearer(member_token)), 403)
    assert body["message"] == "missing permission organization.update"
    _assert_error(await client.post(url, json=UPDATE, headers=bearer(outsider_token)), 404)
    row = await _org_row(world, org.id)
    assert (row.name, row.billing_email, row.is_scim_enabled) == ("Acme", None, False)


async def test_billing_admin_may_update(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_BILLING_ADMIN")
    r = await client.post(f"/v1/organizations/{org.id}", json=UPDATE, headers=bearer(token))
    assert r.status_code == 200 and r.json()["name"] == "Renamed"


async def test_update_rejects_bad_bodies_and_changes_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org("Acme")
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    url = f"/v1/organizations/{org.id}"
    bad_bodies: list[object] = [
        {},
        {"name": "X", "billingEmail": "b@a.io"},  # isScimEnabled missing
        {"isScimEnabled": False, "billingEmail": "b@a.io"},  # name missing
        {"name": "X", "isScimEnabled": False},  # billingEmail missing
        UPDATE | {"name": "x" * 51},
        UPDATE | {"name": ""},
        UPDATE | {"name": "   "},
        UPDATE | {"name": 5},
        UPDATE | {"isScimEnabled": "yes"},
        UPDATE | {"isScimEnabled": 1},
        UPDATE | {"billingEmail": ["b@a.io"]},
        UPDATE | {"billingEmail": "b" * 321},
        UPDATE | {"name": "a\x00b"},  # NUL: PostgreSQL cannot store it
        UPDATE | {"billingEmail": "b\x00@a.io"},
        [UPDATE],
        "Renamed",
    ]
    for bad in bad_bodies:
        body = _assert_error(await client.post(url, json=bad, headers=bearer(token)), 400)
        assert body["message"], bad
    for raw, ctype in (("{not json", "application/json"), ("name=x", "text/plain"), ("", "")):
        headers = bearer(token) | ({"content-type": ctype} if ctype else {})
        _assert_error(await client.post(url, content=raw, headers=headers), 400)
    row = await _org_row(world, org.id)
    assert (row.name, row.billing_email, row.is_scim_enabled) == ("Acme", None, False)
    async with world.database.transaction() as db:
        events = await db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "organization.update")
        )
    assert events == 0


async def test_unknown_fields_are_ignored(client: httpx.AsyncClient, world: World) -> None:
    """As in Astro; in particular the plan cannot be changed through the update request."""
    org = await world.org("Acme", support_plan="TRIAL")
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    r = await client.post(
        f"/v1/organizations/{org.id}",
        json=UPDATE | {"supportPlan": "BUSINESS_CRITICAL", "id": "cnope00000000000000000000"},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    assert r.json()["supportPlan"] == "TRIAL" and r.json()["id"] == org.id
    assert (await _org_row(world, org.id)).support_plan == "TRIAL"


def test_subject_profiles() -> None:
    """Users, API tokens, the system, and subjects since deleted."""
    user = User(id="cuser0000000000000000000a", username="u@a.io", full_name="U", avatar_url="")
    token = Token(id="ctoken000000000000000000a", name="ci-token")
    subjects: dict[str, User | Token] = {user.id: user, token.id: token}
    assert subject(user.id, subjects) == _profile(user)
    assert subject("ctoken000000000000000000a", subjects) == {
        "id": "ctoken000000000000000000a",
        "subjectType": "SERVICEKEY",
        "apiTokenName": "ci-token",
    }
    assert subject(None, subjects) == SYSTEM
    assert subject("cgone0000000000000000000a", subjects) == {"id": "cgone0000000000000000000a"}
    for value in (_profile(user), SYSTEM, {"id": "x"}):
        assert_astro(value, "BasicSubjectProfile")
