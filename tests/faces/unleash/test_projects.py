"""Unleash projects are workspaces and groups are teams: project roles (GET /user/roles,
GET /user-admin/{id}/permissions?project=), groups (profile, access overview), project
permissions from workspace roles granted through any face."""

from __future__ import annotations

from typing import Any

import httpx

from tenantry.faces.unleash import dialect as unleash_me
from tests.faces.unleash import spec
from tests.factories import World, bearer

ROLES = "/api/admin/user/roles"


async def _setup(world: World) -> dict[str, Any]:
    """A Viewer who owns workspace `ws` (own binding) and is a Member of `ws2` through a team,
    and an admin."""
    org = await world.org()
    ws = await world.workspace(org, "ws")
    ws2 = await world.workspace(org, "ws2")
    user = await world.user("pat@example.com", "Pat", email="pat@example.com")
    await world.roles(org, user, workspaces=[(ws.id, "WORKSPACE_OWNER")])
    team = await world.team(org, "Platform team", [user], workspaces=[(ws2.id, "WORKSPACE_AUTHOR")])
    admin = await world.admin("root@example.com")
    return {
        "ws": ws.id,
        "ws2": ws2.id,
        "user": user,
        "team": team,
        "auth": bearer(await world.token(user)),
        "admin": bearer(await world.token(admin)),
    }


def _group(team: Any) -> dict[str, Any]:
    return {
        "id": unleash_me.group_number(team),
        "name": "Platform team",
        "description": None,
        "mappingsSSO": [],
        "rootRole": None,
        "scimId": None,
    }


async def test_project_roles_of_the_caller(client: httpx.AsyncClient, world: World) -> None:
    s = await _setup(world)
    owner = unleash_me.project_role_body(unleash_me.OWNER)
    member = unleash_me.project_role_body(unleash_me.MEMBER)
    # The root role is bound in Unleash's `default` project, a project role in its project.
    viewer_role = {**unleash_me.root_role_body(3), "project": "default"}
    r = await client.get(ROLES, params={"projectId": s["ws"]}, headers=s["auth"])
    assert r.status_code == 200
    assert r.json() == {"version": 1, "roles": [viewer_role, {**owner, "project": s["ws"]}]}
    assert spec.errors("rolesSchema", r.json()) == []
    # Through the team: a Member of ws2.
    r = await client.get(ROLES, params={"projectId": s["ws2"]}, headers=s["auth"])
    assert r.json() == {"version": 1, "roles": [viewer_role, {**member, "project": s["ws2"]}]}
    assert member["name"] == "Member" and member["id"] == 5 and owner["id"] == 4
    # No role in a project: the root role only.
    r = await client.get(ROLES, params={"projectId": "elsewhere"}, headers=s["auth"])
    assert r.json() == {"version": 1, "roles": [viewer_role]}


async def test_profile_lists_groups_from_teams(client: httpx.AsyncClient, world: World) -> None:
    s = await _setup(world)
    r = await client.get("/api/admin/user/profile", headers=s["auth"])
    assert r.status_code == 200
    body = r.json()
    assert body["groups"] == [_group(s["team"])]
    assert spec.errors("groupSchema", body["groups"][0]) == []
    assert body["projects"] == ["default", *sorted([s["ws"], s["ws2"]])]  # Unleash's own first
    assert body["rootRole"]["name"] == "Viewer"
    # The keys and their order as Unleash 8.2 answers (capture 11).
    assert list(body) == list(spec.response(11)[2])


async def test_project_permissions_come_from_workspace_roles(
    client: httpx.AsyncClient, world: World
) -> None:
    s = await _setup(world)
    me = (await client.get("/api/admin/user", headers=s["auth"])).json()
    assert spec.errors("meSchema", me) == []
    assert {"permission": "UPDATE_PROJECT", "project": s["ws"]} in me["permissions"]
    assert {"permission": "UPDATE_PROJECT", "project": s["ws2"]} not in me["permissions"]
    assert {"permission": "PROJECT_USER_ACCESS_READ", "project": s["ws2"]} in me["permissions"]


async def test_access_overview_with_a_project(client: httpx.AsyncClient, world: World) -> None:
    s = await _setup(world)
    seq = s["user"].seq
    url = f"/api/admin/user-admin/{seq}/permissions"
    body = (await client.get(url, params={"project": s["ws"]}, headers=s["admin"])).json()
    me = (await client.get("/api/admin/user", headers=s["auth"])).json()
    in_ws = {p["permission"] for p in me["permissions"] if p.get("project") == s["ws"]}
    assert in_ws and "UPDATE_PROJECT" in in_ws
    held = {p["name"] for p in body["overview"]["project"] if p["hasPermission"]}
    assert held == in_ws
    assert not any(p["hasPermission"] for p in body["overview"]["root"])
    assert body["overview"]["groups"] == [_group(s["team"])]
    (role,) = body["projectRoles"]
    assert spec.errors("roleWithPermissionsSchema", role) == []
    assert (role["id"], role["name"], role["type"]) == (4, "Owner", "project")
    assert {p["name"] for p in role["permissions"]} == in_ws
    assert all(p["type"] == "project" for p in role["permissions"])
    for p in role["permissions"]:
        assert spec.errors("adminPermissionSchema", p) == []
    # Through the team in ws2: a Member, with what WORKSPACE_AUTHOR grants there.
    body = (await client.get(url, params={"project": s["ws2"]}, headers=s["admin"])).json()
    (role,) = body["projectRoles"]
    assert role["name"] == "Member"
    in_ws2 = {p["permission"] for p in me["permissions"] if p.get("project") == s["ws2"]}
    assert {p["name"] for p in role["permissions"]} == in_ws2
    assert {p["name"] for p in body["overview"]["project"] if p["hasPermission"]} == in_ws2
    # Without a project: no project roles (as Unleash), groups still listed.
    body = (await client.get(url, headers=s["admin"])).json()
    assert body["projectRoles"] == [] and body["overview"]["groups"] == [_group(s["team"])]
    assert not any(p["hasPermission"] for p in body["overview"]["project"])
