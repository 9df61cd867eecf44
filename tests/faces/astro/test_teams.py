"""Astro teams: CRUD, members, roles (stored as team bindings, effective for every member),
validation, permissions and tenant isolation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.db.models import AuditEvent, RoleBinding, Team, TeamMember
from tests.faces.errors import NO_TOKEN, astro_error, astro_invalid
from tests.factories import World, bearer
from tests.spec import assert_astro

PREFIXES = ("/v1", "/iam/v1beta1", "/platform/v1beta1")


async def _allowed(
    client: httpx.AsyncClient, token: str, user_id: str, permission: str, scope: dict[str, Any]
) -> bool:
    r = await client.post(
        "/tenantry/v1/check",
        json={"subject": {"type": "user", "id": user_id}, "permission": permission, "scope": scope},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    allowed: bool = r.json()["allowed"]
    return allowed


async def _state(world: World) -> tuple[int, int, int]:
    async with world.database.transaction() as db:
        teams = await db.scalar(select(func.count()).select_from(Team)) or 0
        members = await db.scalar(select(func.count()).select_from(TeamMember)) or 0
        bindings = (
            await db.scalar(
                select(func.count())
                .select_from(RoleBinding)
                .where(RoleBinding.subject_type == "team")
            )
            or 0
        )
    return teams, members, bindings


async def test_create_get_update_and_list_teams(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    owner, token = await world.member(org, "ORGANIZATION_OWNER", full_name="Olga")
    ann = await world.user("ann@acme.io", "Ann")
    await world.roles(org, ann)
    r = await client.post(
        f"/v1/organizations/{org.id}/teams",
        json={
            "name": "Data",
            "description": "data people",
            "memberIds": [ann.id, ann.id],
            "organizationRole": "ORGANIZATION_BILLING_ADMIN",
        },
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    team = r.json()
    assert_astro(team, "Team")
    assert team["name"] == "Data" and team["description"] == "data people"
    assert team["organizationId"] == org.id and team["isIdpManaged"] is False
    assert team["organizationRole"] == "ORGANIZATION_BILLING_ADMIN"
    assert team["workspaceRoles"] == [] and team["deploymentRoles"] == []
    assert team["rolesCount"] == 1
    assert team["createdBy"]["id"] == owner.id and team["createdBy"]["subjectType"] == "USER"
    for prefix in PREFIXES:
        got = await client.get(
            f"{prefix}/organizations/{org.id}/teams/{team['id']}", headers=bearer(token)
        )
        assert got.status_code == 200 and got.json() == team
    r = await client.post(
        f"/v1/organizations/{org.id}/teams/{team['id']}",
        json={"name": "Data Eng"},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    assert_astro(r.json(), "Team")
    assert r.json()["name"] == "Data Eng" and r.json()["description"] == "data people"
    # a team without an explicit organization role is an ORGANIZATION_MEMBER
    r = await client.post(
        f"/v1/organizations/{org.id}/teams", json={"name": "Alpha"}, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    assert r.json()["organizationRole"] == "ORGANIZATION_MEMBER"
    listed = await client.get(
        f"/v1/organizations/{org.id}/teams?sorts=name:asc", headers=bearer(token)
    )
    assert listed.status_code == 200
    page = listed.json()
    assert_astro(page, "TeamsPaginated")
    assert [t["name"] for t in page["teams"]] == ["Alpha", "Data Eng"]
    assert page["totalCount"] == 2 and page["limit"] == 20 and page["offset"] == 0
    r = await client.get(
        f"/v1/organizations/{org.id}/teams?names=Alpha&names=Nope", headers=bearer(token)
    )
    assert [t["name"] for t in r.json()["teams"]] == ["Alpha"] and r.json()["totalCount"] == 1
    r = await client.get(
        f"/v1/organizations/{org.id}/teams?sorts=name:desc&limit=1&offset=1", headers=bearer(token)
    )
    assert [t["name"] for t in r.json()["teams"]] == ["Alpha"] and r.json()["totalCount"] == 2
    async with world.database.transaction() as db:
        org_binding = await db.scalar(
            select(RoleBinding).where(
                RoleBinding.subject_type == "team", RoleBinding.subject_id == team["id"]
            )
        )
        actions = list(await db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert org_binding is not None and org_binding.scope_type == "ORGANIZATION"
    assert org_binding.role == "ORGANIZATION_BILLING_ADMIN"
    assert org_binding.scope_key == f"ORGANIZATION:{org.id}"
    assert actions.count("organization.team.create") == 2
    assert "organization.team.update" in actions


async def test_team_names_are_unique_per_organization(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    await world.team(org, "Taken")
    other = await world.team(org, "Other")
    await world.team(await world.org("B"), "Elsewhere")
    url = f"/v1/organizations/{org.id}/teams"
    taken = "a team named 'Taken' already exists in this organization"
    r = await client.post(url, json={"name": "Taken"}, headers=bearer(token))
    assert r.status_code == 400  # a conflict: Astro documents no 409
    astro_error(r, 400, taken)
    r = await client.post(f"{url}/{other.id}", json={"name": "Taken"}, headers=bearer(token))
    assert r.status_code == 400  # a conflict: Astro documents no 409
    astro_error(r, 400, taken)
    assert (await client.post(url, json={"name": "Elsewhere"}, headers=bearer(token))).is_success
    got = await client.get(f"{url}/{other.id}", headers=bearer(token))
    assert got.json()["name"] == "Other"


async def test_members_list_add_and_remove(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    people = []
    for name, full in (("cat", "A Cat"), ("ann", "C Ann"), ("bob", "B Bob")):
        user = await world.user(f"{name}@acme.io", full)
        await world.roles(org, user)
        people.append(user)
    cat, ann, bob = people
    team = await world.team(org, "T", members=[cat])
    url = f"/v1/organizations/{org.id}/teams/{team.id}/members"
    r = await client.post(url, json={"memberIds": [ann.id, bob.id, cat.id]}, headers=bearer(token))
    assert r.status_code == 204 and r.content == b"", r.text
    r = await client.get(f"{url}?sorts=username:asc", headers=bearer(token))
    assert r.status_code == 200
    page = r.json()
    assert_astro(page, "TeamMembersPaginated")
    assert [m["username"] for m in page["teamMembers"]] == [
        "ann@acme.io",
        "bob@acme.io",
        "cat@acme.io",
    ]
    assert page["totalCount"] == 3
    assert page["teamMembers"][0] == {
        "avatarUrl": "",
        "createdAt": page["teamMembers"][0]["createdAt"],
        "fullName": "C Ann",
        "userId": ann.id,
        "username": "ann@acme.io",
    }
    r = await client.get(f"{url}?sorts=fullName:desc&limit=2", headers=bearer(token))
    assert [m["fullName"] for m in r.json()["teamMembers"]] == ["C Ann", "B Bob"]
    r = await client.delete(f"{url}/{bob.id}", headers=bearer(token))
    assert r.status_code == 204
    again = await client.delete(f"{url}/{bob.id}", headers=bearer(token))
    astro_error(again, 404, "user is not a member of this team")
    r = await client.get(url, headers=bearer(token))
    assert {m["userId"] for m in r.json()["teamMembers"]} == {ann.id, cat.id}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"memberIds": ["OUTSIDER"]}, "memberIds[0]"),
        ({"memberIds": ["MEMBER", "cnope00000000000000000000"]}, "memberIds[1]"),
        ({"memberIds": []}, "memberIds"),
        ({"memberIds": "MEMBER"}, "memberIds"),
        ({}, "memberIds"),
        ("{bad", None),
    ],
)
async def test_bad_member_additions_are_400_and_change_nothing(
    client: httpx.AsyncClient, world: World, body: Any, field: str | None
) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    member = await world.user()
    await world.roles(org, member)
    outsider = await world.user()
    team = await world.team(org)
    raw = body if isinstance(body, str) else httpx.Request("POST", "/", json=body).content.decode()
    raw = raw.replace('"OUTSIDER"', f'"{outsider.id}"').replace('"MEMBER"', f'"{member.id}"')
    before = await _state(world)
    r = await client.post(
        f"/v1/organizations/{org.id}/teams/{team.id}/members",
        content=raw,
        headers=bearer(token) | {"content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    astro_invalid(r, field)
    assert await _state(world) == before


async def test_team_roles_apply_to_members(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    dep = await world.deployment(ws)
    _, owner_token = await world.member(org, "ORGANIZATION_OWNER")
    user, token = await world.member(org)
    team = await world.team(org, "Readers", members=[user])
    ws_scope = {"type": "WORKSPACE", "id": ws.id}
    assert not await _allowed(client, token, user.id, "workspace.get", ws_scope)
    await world.custom_role(org, "Dep_Reader", ["deployment.get"])
    r = await client.post(
        f"/v1/organizations/{org.id}/teams/{team.id}/roles",
        json={
            "organizationRole": "ORGANIZATION_MEMBER",
            "workspaceRoles": [{"workspaceId": ws.id, "role": "WORKSPACE_MEMBER"}],
            "deploymentRoles": [{"deploymentId": dep.id, "role": "Dep_Reader"}],
        },
        headers=bearer(owner_token),
    )
    assert r.status_code == 200, r.text
    assert_astro(r.json(), "SubjectRoles")
    assert r.json() == {
        "organizationRole": "ORGANIZATION_MEMBER",
        "workspaceRoles": [{"role": "WORKSPACE_MEMBER", "workspaceId": ws.id}],
        "deploymentRoles": [{"deploymentId": dep.id, "role": "Dep_Reader"}],
        "dagRoles": [],
    }
    got = await client.get(f"/v1/organizations/{org.id}/teams/{team.id}", headers=bearer(token))
    assert_astro(got.json(), "Team")
    assert got.json()["rolesCount"] == 3
    assert got.json()["workspaceRoles"] == [{"role": "WORKSPACE_MEMBER", "workspaceId": ws.id}]
    r = await client.post(
        "/tenantry/v1/check",
        json={
            "subject": {"type": "user", "id": user.id},
            "permission": "workspace.get",
            "scope": ws_scope,
        },
        headers=bearer(token),
    )
    assert r.json()["allowed"] is True
    assert r.json()["grantedBy"][0]["subjectType"] == "team"
    assert r.json()["grantedBy"][0]["subjectId"] == team.id
    assert not await _allowed(client, token, user.id, "workspace.update", ws_scope)
    assert await _allowed(
        client, token, user.id, "deployment.get", {"type": "DEPLOYMENT", "id": dep.id}
    )
    # leaving the team takes the team's permissions away
    r = await client.delete(
        f"/v1/organizations/{org.id}/teams/{team.id}/members/{user.id}",
        headers=bearer(owner_token),
    )
    assert r.status_code == 204
    assert not await _allowed(client, token, user.id, "workspace.get", ws_scope)
    # and so does deleting the team
    await client.post(
        f"/v1/organizations/{org.id}/teams/{team.id}/members",
        json={"memberIds": [user.id]},
        headers=bearer(owner_token),
    )
    assert await _allowed(client, token, user.id, "workspace.get", ws_scope)
    r = await client.delete(
        f"/v1/organizations/{org.id}/teams/{team.id}", headers=bearer(owner_token)
    )
    assert r.status_code == 204 and r.content == b""
    assert not await _allowed(client, token, user.id, "workspace.get", ws_scope)
    assert await _state(world) == (0, 0, 0)
    got = await client.get(f"/v1/organizations/{org.id}/teams/{team.id}", headers=bearer(token))
    assert got.status_code == 404
    astro_error(got, 404, "team not found")


async def test_a_team_organization_role_grants_it(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    user, token = await world.member(org)
    await world.team(org, "Owners", members=[user], org_role="ORGANIZATION_OWNER")
    ws_scope = {"type": "WORKSPACE", "id": ws.id}
    assert await _allowed(client, token, user.id, "workspace.update", ws_scope)
    r = await client.post(
        f"/v1/organizations/{org.id}/teams", json={"name": "Made by me"}, headers=bearer(token)
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"workspaceRoles": [{"workspaceId": "WS", "role": "WORKSPACE_MEMBER"}]},
            "organizationRole",
        ),
        ({"organizationRole": "ORGANIZATION_KING"}, "organizationRole"),
        ({"organizationRole": "WORKSPACE_OWNER"}, "organizationRole"),
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
                "workspaceRoles": [{"workspaceId": "OTHER_WS", "role": "WORKSPACE_MEMBER"}],
            },
            "workspaceRoles[0].workspaceId",
        ),
        (
            {
                "organizationRole": "ORGANIZATION_MEMBER",
                "deploymentRoles": [{"deploymentId": "DEP", "role": "No_Such_Role"}],
            },
            "deploymentRoles[0].role",
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
        ({"organizationRole": "ORGANIZATION_MEMBER", "workspaceRoles": "nope"}, "workspaceRoles"),
        ([], "body"),
        ("{bad", None),
    ],
)
async def test_bad_team_roles_are_400_and_change_nothing(
    client: httpx.AsyncClient, world: World, body: Any, field: str | None
) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    dep = await world.deployment(ws)
    other_ws = await world.workspace(await world.org("B"))
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    team = await world.team(org, workspaces=[(ws.id, "WORKSPACE_AUTHOR")])
    raw = body if isinstance(body, str) else httpx.Request("POST", "/", json=body).content.decode()
    for key, value in (("OTHER_WS", other_ws.id), ("WS", ws.id), ("DEP", dep.id)):
        raw = raw.replace(f'"{key}"', f'"{value}"')
    r = await client.post(
        f"/v1/organizations/{org.id}/teams/{team.id}/roles",
        content=raw,
        headers=bearer(token) | {"content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    astro_invalid(r, field)
    got = (
        await client.get(f"/v1/organizations/{org.id}/teams/{team.id}", headers=bearer(token))
    ).json()
    assert got["organizationRole"] == "ORGANIZATION_MEMBER"
    assert got["workspaceRoles"] == [{"role": "WORKSPACE_AUTHOR", "workspaceId": ws.id}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 7}, "name"),
        ({"name": "x" * 257}, "name"),
        ({"name": "T", "memberIds": ["OUTSIDER"]}, "memberIds[0]"),
        ({"name": "T", "organizationRole": "DEPLOYMENT_ADMIN"}, "organizationRole"),
        ({"name": "T", "description": "d" * 2049}, "description"),
        ("{bad", None),
    ],
)
async def test_bad_teams_are_400_and_change_nothing(
    client: httpx.AsyncClient, world: World, body: Any, field: str | None
) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    outsider = await world.user()
    raw = body if isinstance(body, str) else httpx.Request("POST", "/", json=body).content.decode()
    raw = raw.replace('"OUTSIDER"', f'"{outsider.id}"')
    r = await client.post(
        f"/v1/organizations/{org.id}/teams",
        content=raw,
        headers=bearer(token) | {"content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    astro_invalid(r, field)
    assert await _state(world) == (0, 0, 0)


async def test_members_may_read_teams_but_not_change_them(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    me, token = await world.member(org)
    team = await world.team(org, "T", members=[me])
    base = f"/v1/organizations/{org.id}/teams"
    assert (await client.get(base, headers=bearer(token))).status_code == 200
    assert (await client.get(f"{base}/{team.id}", headers=bearer(token))).status_code == 200
    assert (await client.get(f"{base}/{team.id}/members", headers=bearer(token))).status_code == 200
    before = await _state(world)
    for method, url, body, permission in (
        ("POST", base, {"name": "Mine"}, "create"),
        ("POST", f"{base}/{team.id}", {"name": "Renamed"}, "update"),
        ("DELETE", f"{base}/{team.id}", None, "delete"),
        ("POST", f"{base}/{team.id}/members", {"memberIds": [me.id]}, "members.update"),
        ("DELETE", f"{base}/{team.id}/members/{me.id}", None, "members.update"),
        (
            "POST",
            f"{base}/{team.id}/roles",
            {"organizationRole": "ORGANIZATION_OWNER"},
            "roles.update",
        ),
    ):
        r = await client.request(method, url, json=body, headers=bearer(token))
        assert r.status_code == 403, (method, url, r.text)
        astro_error(r, 403, f"missing permission organization.teams.{permission}")
        r = await client.request(method, url, json=body)
        assert r.status_code == 401
        astro_error(r, 401, NO_TOKEN)
    assert await _state(world) == before
    got = await client.get(f"{base}/{team.id}", headers=bearer(token))
    assert got.json()["name"] == "T" and got.json()["organizationRole"] == "ORGANIZATION_MEMBER"


async def test_other_organizations_teams_are_404(client: httpx.AsyncClient, world: World) -> None:
    org_a, org_b = await world.org("A"), await world.org("B")
    _, token = await world.member(org_a, "ORGANIZATION_OWNER")
    b_member = await world.user()
    await world.roles(org_b, b_member)
    team_b = await world.team(org_b, "B team", members=[b_member])
    before = await _state(world)
    for org_id in (org_a.id, org_b.id):
        base = f"/v1/organizations/{org_id}/teams/{team_b.id}"
        for method, url, body in (
            ("GET", base, None),
            ("POST", base, {"name": "Hijacked"}),
            ("DELETE", base, None),
            ("GET", f"{base}/members", None),
            ("POST", f"{base}/members", {"memberIds": [b_member.id]}),
            ("DELETE", f"{base}/members/{b_member.id}", None),
            ("POST", f"{base}/roles", {"organizationRole": "ORGANIZATION_OWNER"}),
        ):
            # org A's path: no such team there; org B's: the caller cannot see the org
            missing = "team not found" if org_id == org_a.id else "organization not found"
            r = await client.request(method, url, json=body, headers=bearer(token))
            assert r.status_code == 404, (method, url, r.text)
            astro_error(r, 404, missing)
    r = await client.get(f"/v1/organizations/{org_b.id}/teams", headers=bearer(token))
    assert r.status_code == 404
    astro_error(r, 404, "organization not found")
    assert await _state(world) == before


async def test_bad_list_parameters(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    _, token = await world.member(org)
    team = await world.team(org)
    for url, field in (
        (f"/v1/organizations/{org.id}/teams?sorts=size:asc", "sorts.0"),
        (f"/v1/organizations/{org.id}/teams?limit=1001", "limit"),
        (f"/v1/organizations/{org.id}/teams?names=", "names.0"),
        (f"/v1/organizations/{org.id}/teams/{team.id}/members?sorts=name:asc", "sorts.0"),
        (f"/v1/organizations/{org.id}/teams/{team.id}/members?offset=-1", "offset"),
        (f"/v1/organizations/{org.id}/teams/not-an-id", "teamId"),
    ):
        r = await client.get(url, headers=bearer(token))
        assert r.status_code == 400, (url, r.text)
        astro_invalid(r, field)
