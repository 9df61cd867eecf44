"""Astro users: /users/self, one member, the member list (filters, sorts, paging), roles."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.db.models import AuditEvent, RoleBinding
from tenantry.directory.members import DagRole
from tenantry.ids import new_id
from tests.faces.errors import (
    BAD_TOKEN,
    NO_TOKEN,
    NOT_JSON,
    astro_error,
    astro_invalid,
)
from tests.factories import World, bearer
from tests.spec import assert_astro

PREFIXES = ("/v1", "/iam/v1beta1", "/platform/v1beta1")
NOT_A_MEMBER = "user not found in this organization"  # directory/members.py


async def test_self_shows_roles_at_every_scope(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org("Acme")
    ws = await world.workspace(org)
    dep = await world.deployment(ws)
    user = await world.user("jane@acme.io", "Jane Doe")
    await world.roles(
        org,
        user,
        "ORGANIZATION_MEMBER",
        workspaces=[(ws.id, "WORKSPACE_AUTHOR")],
        deployments=[(dep.id, "DEPLOYMENT_ADMIN")],
        dags=[
            DagRole(dep.id, "DAG_VIEWER", dag_id="etl"),
            DagRole(dep.id, "DAG_AUTHOR", dag_tag="team-a"),
        ],
    )
    token = await world.token(user)
    for prefix in PREFIXES:
        r = await client.get(f"{prefix}/users/self", headers=bearer(token))
        assert r.status_code == 200, r.text
        body = r.json()
        assert_astro(body, "SelfUser")
        assert body["id"] == user.id and body["username"] == "jane@acme.io"
        assert body["fullName"] == "Jane Doe" and body["status"] == "ACTIVE"
        assert body["organizationId"] == org.id
        roles = {
            (
                x["role"],
                x["scope"]["type"],
                x["scope"]["entityId"],
                x["scope"].get("deploymentId"),
                x["scope"].get("dagTag"),
            )
            for x in body["roles"]
        }
        assert roles == {
            ("ORGANIZATION_MEMBER", "ORGANIZATION", org.id, None, None),
            ("WORKSPACE_AUTHOR", "WORKSPACE", ws.id, None, None),
            ("DEPLOYMENT_ADMIN", "DEPLOYMENT", dep.id, None, None),
            ("DAG_VIEWER", "DAG", "etl", dep.id, None),
            ("DAG_AUTHOR", "DAG", dep.id, dep.id, "team-a"),
        }


async def test_self_accepts_create_if_not_exist(client: httpx.AsyncClient, world: World) -> None:
    user = await world.user()
    r = await client.get(
        "/v1/users/self?createIfNotExist=true", headers=bearer(await world.token(user))
    )
    assert r.status_code == 200 and r.json()["id"] == user.id
    r = await client.get(
        "/v1/users/self?createIfNotExist=maybe", headers=bearer(await world.token(user))
    )
    assert r.status_code == 400
    astro_invalid(r, "createIfNotExist")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, NO_TOKEN),
        ("Bearer", NO_TOKEN),
        ("Bearer tnt_nope", BAD_TOKEN),
        ("Basic abc", NO_TOKEN),  # not a bearer token at all
        ("tnt_x", NO_TOKEN),
    ],
)
async def test_self_requires_a_valid_bearer_token(
    client: httpx.AsyncClient, header: str | None, message: str
) -> None:
    headers = {"Authorization": header} if header else {}
    r = await client.get("/v1/users/self", headers=headers)
    assert r.status_code == 401
    body = r.json()
    assert_astro(body, "Error")
    assert body["statusCode"] == 401 and body["requestId"] == r.headers["x-request-id"]
    astro_error(r, 401, message)


async def test_expired_and_revoked_tokens_are_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    from tenantry.clock import utcnow
    from tenantry.db.models import Token
    from tenantry.identity.tokens import digest, revoke

    user = await world.user()
    token = await world.token(user)
    assert (await client.get("/v1/users/self", headers=bearer(token))).status_code == 200
    async with world.database.transaction() as db:
        found = await db.scalar(select(Token).where(Token.digest == digest(token)))
        assert found is not None
        await revoke(db, found.id, by=None)
    astro_error(await client.get("/v1/users/self", headers=bearer(token)), 401, BAD_TOKEN)
    other = await world.token(user)
    async with world.database.transaction() as db:
        found = await db.scalar(select(Token).where(Token.digest == digest(other)))
        assert found is not None
        found.expires_at = utcnow()
    astro_error(await client.get("/v1/users/self", headers=bearer(other)), 401, BAD_TOKEN)


async def test_get_user_in_organization(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    dep = await world.deployment(ws)
    _, token = await world.member(org)
    user = await world.user("bob@acme.io", "Bob")
    await world.roles(
        org,
        user,
        "ORGANIZATION_OBSERVE_MEMBER",
        workspaces=[(ws.id, "WORKSPACE_MEMBER")],
        dags=[DagRole(dep.id, "DAG_VIEWER", dag_id="my_dag")],
    )
    r = await client.get(
        f"/platform/v1beta1/organizations/{org.id}/users/{user.id}", headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert_astro(body, "User")
    assert body["organizationRole"] == "ORGANIZATION_OBSERVE_MEMBER"
    assert body["workspaceRoles"] == [{"role": "WORKSPACE_MEMBER", "workspaceId": ws.id}]
    assert body["dagRoles"] == [{"deploymentId": dep.id, "role": "DAG_VIEWER", "dagId": "my_dag"}]
    assert body["deploymentRoles"] == []


async def test_get_user_who_is_not_a_member_is_404(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    _, token = await world.member(org)
    outsider = await world.user()
    r = await client.get(f"/v1/organizations/{org.id}/users/{outsider.id}", headers=bearer(token))
    assert r.status_code == 404
    astro_error(r, 404, NOT_A_MEMBER)


async def _org_with_people(world: World):  # type: ignore[no-untyped-def]
    org = await world.org()
    ws1, ws2 = await world.workspace(org, "one"), await world.workspace(org, "two")
    dep1 = await world.deployment(ws1, "d1")
    dep2 = await world.deployment(ws2, "d2")
    people = {}
    for name, full in [
        ("ann", "Zoe Ann"),
        ("bea", "Yan Bea"),
        ("cal", "Xia Cal"),
        ("dan", "Wes Dan"),
        ("eve", "Val Eve"),
    ]:
        people[name] = await world.user(f"{name}@acme.io", full)
    await world.roles(org, people["ann"], "ORGANIZATION_OWNER")
    await world.roles(org, people["bea"], workspaces=[(ws1.id, "WORKSPACE_MEMBER")])
    await world.roles(org, people["cal"], deployments=[(dep1.id, "DEPLOYMENT_ADMIN")])
    await world.roles(org, people["dan"], dags=[DagRole(dep2.id, "DAG_VIEWER", dag_id="etl")])
    await world.roles(
        org,
        people["eve"],
        dags=[
            DagRole(dep2.id, "DAG_AUTHOR", dag_tag="team-a"),
            DagRole(dep1.id, "DAG_VIEWER", dag_tag="team-b"),
        ],
    )
    token = await world.token(people["ann"])
    return org, ws1, ws2, dep1, dep2, people, token


async def _names(client: httpx.AsyncClient, org_id: str, token: str, query: str) -> list[str]:
    r = await client.get(f"/v1/organizations/{org_id}/users?{query}", headers=bearer(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert_astro(body, "UsersPaginated")
    assert body["totalCount"] >= len(body["users"])
    return [u["username"].split("@")[0] for u in body["users"]]


async def test_list_filters_by_scope_and_below(client: httpx.AsyncClient, world: World) -> None:
    org, ws1, ws2, dep1, _dep2, _, token = await _org_with_people(world)
    q = "sorts=username:asc"
    assert await _names(client, org.id, token, q) == ["ann", "bea", "cal", "dan", "eve"]
    assert await _names(client, org.id, token, f"{q}&workspaceId={ws1.id}") == ["bea", "cal", "eve"]
    assert await _names(client, org.id, token, f"{q}&workspaceId={ws2.id}") == ["dan", "eve"]
    assert await _names(client, org.id, token, f"{q}&deploymentId={dep1.id}") == ["cal", "eve"]
    assert await _names(client, org.id, token, f"{q}&dagId=etl") == ["dan"]
    assert await _names(client, org.id, token, f"{q}&dagTags=team-a") == ["eve"]
    assert await _names(client, org.id, token, f"{q}&dagTags=team-a&dagTags=team-b") == ["eve"]
    assert await _names(client, org.id, token, f"{q}&dagTags=nope") == []
    both = f"{q}&workspaceId={ws2.id}&deploymentId={dep1.id}"
    assert await _names(client, org.id, token, both) == ["eve"]


async def test_list_entries_are_the_members_views(client: httpx.AsyncClient, world: World) -> None:
    """The list reads plain rows of the shown columns; GET one member reads the ORM user. Both
    must render the same body, roles and timestamps included."""
    org, *_, token = await _org_with_people(world)
    r = await client.get(f"/v1/organizations/{org.id}/users", headers=bearer(token))
    assert r.status_code == 200, r.text
    listed = r.json()["users"]
    assert len(listed) == 5
    for entry in listed:
        one = await client.get(
            f"/v1/organizations/{org.id}/users/{entry['id']}", headers=bearer(token)
        )
        assert one.status_code == 200, one.text
        assert_astro(one.json(), "User")
        assert entry == one.json()
    eve = next(u for u in listed if u["username"] == "eve@acme.io")
    assert sorted(d.get("dagTag") for d in eve["dagRoles"]) == ["team-a", "team-b"]
    assert eve["createdAt"].endswith("Z") and eve["updatedAt"].endswith("Z")


async def test_list_sorts_and_pages_stably(client: httpx.AsyncClient, world: World) -> None:
    org, *_, token = await _org_with_people(world)
    assert await _names(client, org.id, token, "sorts=fullName:desc") == [
        "ann",
        "bea",
        "cal",
        "dan",
        "eve",
    ]
    assert await _names(client, org.id, token, "sorts=fullName:asc") == [
        "eve",
        "dan",
        "cal",
        "bea",
        "ann",
    ]
    by_id = await _names(client, org.id, token, "sorts=id:asc&limit=1000")
    pages = []
    for offset in range(0, 5, 2):
        pages += await _names(client, org.id, token, f"sorts=id:asc&limit=2&offset={offset}")
    assert pages == by_id
    r = await client.get(f"/v1/organizations/{org.id}/users?limit=0", headers=bearer(token))
    assert r.json() == {"limit": 0, "offset": 0, "totalCount": 5, "users": []}
    r = await client.get(f"/v1/organizations/{org.id}/users?offset=100", headers=bearer(token))
    assert r.json()["totalCount"] == 5 and r.json()["users"] == []


async def test_list_ties_are_broken_by_id(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    _owner, token = await world.member(org, "ORGANIZATION_OWNER", full_name="Same")
    for _ in range(4):
        u = await world.user(full_name="Same")
        await world.roles(org, u)
    r = await client.get(
        f"/v1/organizations/{org.id}/users?sorts=fullName:asc", headers=bearer(token)
    )
    ids = [u["id"] for u in r.json()["users"]]
    assert ids == sorted(ids) and len(ids) == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=1001", "limit"),
        ("limit=-1", "limit"),
        ("offset=-1", "offset"),
        ("limit=abc", "limit"),
        ("sorts=username", "sorts.0"),
        ("sorts=email:asc", "sorts.0"),
        ("sorts=username:up", "sorts.0"),
        ("sorts=", "sorts.0"),
        ("dagId=", "dagId"),
        ("offset=99999999999999999999", "offset"),
    ],
)
async def test_list_rejects_bad_parameters(
    client: httpx.AsyncClient, world: World, query: str, field: str
) -> None:
    org = await world.org()
    _, token = await world.member(org)
    r = await client.get(f"/v1/organizations/{org.id}/users?{query}", headers=bearer(token))
    assert r.status_code == 400, r.text
    body = r.json()
    assert_astro(body, "Error")
    assert body["statusCode"] == 400 and body["fieldErrors"]
    astro_invalid(r, field)


async def test_update_roles_replaces_everything(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    dep = await world.deployment(ws)
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    user = await world.user()
    await world.roles(org, user, workspaces=[(ws.id, "WORKSPACE_OWNER")])
    body = {
        "organizationRole": "ORGANIZATION_BILLING_ADMIN",
        "deploymentRoles": [{"deploymentId": dep.id, "role": "DEPLOYMENT_ADMIN"}],
        "dagRoles": [{"deploymentId": dep.id, "role": "DAG_AUTHOR", "dagTag": "etl"}],
    }
    r = await client.post(
        f"/v1/organizations/{org.id}/users/{user.id}/roles", json=body, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    assert_astro(r.json(), "SubjectRoles")
    assert r.json() == {
        "organizationRole": "ORGANIZATION_BILLING_ADMIN",
        "workspaceRoles": [],
        **{k: body[k] for k in ("deploymentRoles", "dagRoles")},
    }
    got = await client.get(f"/v1/organizations/{org.id}/users/{user.id}", headers=bearer(token))
    assert got.json()["workspaceRoles"] == [] and got.json()["deploymentRoles"] == [
        {"deploymentId": dep.id, "role": "DEPLOYMENT_ADMIN"}
    ]
    async with world.database.transaction() as db:
        events = await db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.action == "organization.user.roles.replace",
                AuditEvent.target_id == user.id,
            )
        )
    assert events == 2  # the factory's grant and this request


async def test_roles_make_a_non_member_a_member_for_system_administrators_only(
    client: httpx.AsyncClient, world: World
) -> None:
    """An organization's owner cannot pull a user of the instance in by id (nor learn that
    the id exists: the same 404 as a made-up id, issue 14 finding 9); an operator with
    system rights can."""
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    user = await world.user()
    url = f"/v1/organizations/{org.id}/users/{user.id}"
    made_up = f"/v1/organizations/{org.id}/users/{new_id()}"
    astro_error(await client.get(url, headers=bearer(token)), 404, NOT_A_MEMBER)
    member = {"organizationRole": "ORGANIZATION_MEMBER"}
    for body in ({}, member):
        real, fake = [
            await client.post(f"{path}/roles", json=body, headers=bearer(token))
            for path in (url, made_up)
        ]
        assert real.status_code == fake.status_code == 404
        assert real.json()["message"] == fake.json()["message"] == "user not found"
    admin = bearer(await world.token(await world.admin()))
    r = await client.post(f"{url}/roles", json={}, headers=admin)
    assert r.status_code == 404  # no organizationRole: nothing to join with
    astro_error(r, 404, NOT_A_MEMBER)
    r = await client.post(f"{url}/roles", json=member, headers=admin)
    assert r.status_code == 200
    got = await client.get(url, headers=bearer(token))
    assert got.status_code == 200 and got.json()["organizationRole"] == "ORGANIZATION_MEMBER"
    listed = await client.get(f"/v1/organizations/{org.id}/users", headers=bearer(token))
    assert listed.json()["totalCount"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"organizationRole": "ORGANIZATION_KING"}, "organizationRole"),
        (
            {"workspaceRoles": [{"workspaceId": "WS", "role": "WORKSPACE_MEMBER"}]},
            "organizationRole",
        ),
        (
            {
                "organizationRole": "ORGANIZATION_MEMBER",
                "workspaceRoles": [
                    {"workspaceId": "cnope00000000000000000000", "role": "WORKSPACE_MEMBER"}
                ],
            },
            "workspaceRoles[0].workspaceId",
        ),
        (
            {
                "organizationRole": "ORGANIZATION_MEMBER",
                "workspaceRoles": [{"workspaceId": "WS", "role": "DEPLOYMENT_ADMIN"}],
            },
            "workspaceRoles.0.role",
        ),
        (
            {
                "organizationRole": "ORGANIZATION_MEMBER",
                "deploymentRoles": [{"deploymentId": "DEP", "role": "WORKSPACE_OWNER"}],
            },
            "deploymentRoles[0].role",
        ),
        (
            {
                "organizationRole": "ORGANIZATION_MEMBER",
                "dagRoles": [{"deploymentId": "DEP", "role": "DAG_VIEWER"}],
            },
            "dagRoles[0]",
        ),
        (
            {
                "organizationRole": "ORGANIZATION_MEMBER",
                "dagRoles": [
                    {"deploymentId": "DEP", "role": "DAG_VIEWER", "dagId": "a", "dagTag": "b"}
                ],
            },
            "dagRoles[0]",
        ),
        (
            {
                "organizationRole": "ORGANIZATION_MEMBER",
                "workspaceRoles": [
                    {"workspaceId": "WS", "role": "WORKSPACE_MEMBER"},
                    {"workspaceId": "WS", "role": "WORKSPACE_OWNER"},
                ],
            },
            "roles",
        ),
        ({"workspaceRoles": "nope"}, "workspaceRoles"),
        ([1, 2], "body"),
    ],
)
async def test_update_roles_rejects_bad_bodies_and_changes_nothing(
    client: httpx.AsyncClient, world: World, body: object, field: str
) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    dep = await world.deployment(ws)
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    user = await world.user()
    await world.roles(org, user, workspaces=[(ws.id, "WORKSPACE_MEMBER")])
    raw = str(body).replace("'", '"').replace('"WS"', f'"{ws.id}"').replace('"DEP"', f'"{dep.id}"')
    r = await client.post(
        f"/v1/organizations/{org.id}/users/{user.id}/roles",
        content=raw,
        headers=bearer(token) | {"content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    astro_invalid(r, field)
    got = await client.get(f"/v1/organizations/{org.id}/users/{user.id}", headers=bearer(token))
    assert got.json()["organizationRole"] == "ORGANIZATION_MEMBER"
    assert got.json()["workspaceRoles"] == [{"role": "WORKSPACE_MEMBER", "workspaceId": ws.id}]


@pytest.mark.parametrize(
    ("content", "ctype", "reason"),
    [
        ("{not json", "application/json", NOT_JSON),
        ("organizationRole=x", "text/plain", "body: Input should be a valid dictionary"),
        ('{"organizationRole": "' + "x" * 70000 + '"}', "application/json", "larger than 65536"),
    ],
)
async def test_update_roles_rejects_non_json_and_oversized(
    client: httpx.AsyncClient, world: World, content: str, ctype: str, reason: str
) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    user = await world.user()
    r = await client.post(
        f"/v1/organizations/{org.id}/users/{user.id}/roles",
        content=content,
        headers=bearer(token) | {"content-type": ctype},
    )
    assert r.status_code == 400, r.text
    astro_error(r, 400, part=reason)
    async with world.database.transaction() as db:
        bindings = await db.scalar(select(func.count()).select_from(RoleBinding))
    assert bindings == 0


async def test_member_cannot_update_roles(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    me, token = await world.member(org, "ORGANIZATION_MEMBER")
    r = await client.post(
        f"/v1/organizations/{org.id}/users/{me.id}/roles",
        json={"organizationRole": "ORGANIZATION_OWNER"},
        headers=bearer(token),
    )
    assert r.status_code == 403
    astro_error(r, 403, "missing permission organization.users.roles.update")
    got = await client.get(f"/v1/organizations/{org.id}/users/{me.id}", headers=bearer(token))
    assert got.json()["organizationRole"] == "ORGANIZATION_MEMBER"


async def test_concurrent_role_updates_never_mix(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    wss = [await world.workspace(org, f"w{i}") for i in range(6)]
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    user = await world.user()
    await world.roles(org, user)
    a: dict[str, Any] = {
        "organizationRole": "ORGANIZATION_MEMBER",
        "workspaceRoles": [{"workspaceId": w.id, "role": "WORKSPACE_MEMBER"} for w in wss[:3]],
    }
    b: dict[str, Any] = {
        "organizationRole": "ORGANIZATION_BILLING_ADMIN",
        "workspaceRoles": [{"workspaceId": w.id, "role": "WORKSPACE_OWNER"} for w in wss[3:]],
    }
    url = f"/v1/organizations/{org.id}/users/{user.id}/roles"
    for _ in range(5):
        results = await asyncio.gather(
            *(client.post(url, json=body, headers=bearer(token)) for body in (a, b, a, b))
        )
        # A request that lost a race is Astro's 400 (it documents no 409), saying so.
        assert all(
            r.status_code == 200
            or (r.status_code == 400 and "conflicting change" in r.json()["message"])
            for r in results
        ), [r.text for r in results]
        got = (
            await client.get(f"/v1/organizations/{org.id}/users/{user.id}", headers=bearer(token))
        ).json()
        state = {
            "organizationRole": got["organizationRole"],
            "workspaceRoles": sorted(got["workspaceRoles"], key=lambda x: x["workspaceId"]),
        }
        expected = [
            {
                "organizationRole": x["organizationRole"],
                "workspaceRoles": sorted(x["workspaceRoles"], key=lambda y: y["workspaceId"]),
            }
            for x in (a, b)
        ]
        assert state in expected


async def test_descending_ties_are_broken_by_descending_id(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER", full_name="Same")
    for _ in range(3):
        await world.roles(org, await world.user(full_name="Same"))
    r = await client.get(
        f"/v1/organizations/{org.id}/users?sorts=fullName:desc", headers=bearer(token)
    )
    ids = [u["id"] for u in r.json()["users"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 4
