"""Astro Platform workspaces: create, list (visibility, filters, sorts, paging), get, update,
delete; permissions and tenant isolation."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from tenantry.db.models import AuditEvent, Deployment, Organization, RoleBinding, User, Workspace
from tenantry.directory.members import RoleSet, build_bindings
from tenantry.identity.tokens import TokenKind, mint
from tests.factories import World, bearer
from tests.spec import assert_astro

PREFIXES = ("/v1", "/iam/v1beta1", "/platform/v1beta1")
UPDATE = {"name": "Renamed", "description": "new words", "cicdEnforcedDefault": True}
NOPE = "cnope00000000000000000000"


def _profile(user: User) -> dict[str, str]:
    return {
        "id": user.id,
        "subjectType": "USER",
        "username": user.username,
        "fullName": user.full_name,
        "avatarUrl": user.avatar_url,
    }


def _assert_error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert_astro(body, "Error")
    assert body["statusCode"] == status and body["requestId"] == r.headers["x-request-id"]
    return body


async def _count(world: World, model: Any, *where: Any) -> int:
    async with world.database.transaction() as db:
        return await db.scalar(select(func.count()).select_from(model).where(*where)) or 0


async def _workspace_row(world: World, ws_id: str) -> Workspace | None:
    async with world.database.transaction() as db:
        return await db.get(Workspace, ws_id)


async def api_token(world: World, org: Organization, roles: RoleSet) -> str:
    """An Astro-style API token: a subject of its own, holding only the given roles (made by
    an organization owner, whose rights cap the token's)."""
    creator, _ = await world.member(org, "ORGANIZATION_OWNER")
    async with world.database.transaction() as db:
        minted = await mint(
            db,
            kind=TokenKind.API,
            user_id=creator.id,
            name="ci-token",
            organization_id=org.id,
            created_by=creator.id,
        )
        db.add_all(await build_bindings(db, org.id, "token", minted.token.id, roles, None))
        return minted.secret


async def test_create_workspace(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org("Acme")
    owner, token = await world.member(org, "ORGANIZATION_OWNER", full_name="Olive")
    for i, prefix in enumerate(PREFIXES):
        r = await client.post(
            f"{prefix}/organizations/{org.id}/workspaces",
            json={"name": f"Data {i}", "description": "pipelines", "cicdEnforcedDefault": True},
            headers=bearer(token),
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert_astro(body, "Workspace")
        assert {k: v for k, v in body.items() if not k.endswith("At") and k != "id"} == {
            "name": f"Data {i}",
            "description": "pipelines",
            "cicdEnforcedDefault": True,
            "organizationId": org.id,
            "organizationName": "Acme",
            "createdBy": _profile(owner),
            "updatedBy": _profile(owner),
        }
        assert body["createdAt"] == body["updatedAt"]
        got = await client.get(
            f"/v1/organizations/{org.id}/workspaces/{body['id']}", headers=bearer(token)
        )
        assert got.json() == body
    r = await client.post(
        f"/v1/organizations/{org.id}/workspaces", json={"name": "Bare"}, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    assert r.json()["description"] == "" and r.json()["cicdEnforcedDefault"] is False
    assert await _count(world, Workspace, Workspace.organization_id == org.id) == 4
    assert await _count(world, AuditEvent, AuditEvent.action == "workspace.create") == 4


async def test_create_is_refused_to_members_and_outsiders(
    client: httpx.AsyncClient, world: World
) -> None:
    org, other = await world.org("Acme"), await world.org("Other")
    ws = await world.workspace(org)
    member = await world.user()
    await world.roles(org, member, workspaces=[(ws.id, "WORKSPACE_OWNER")])
    member_token = await world.token(member)
    _, outsider_token = await world.member(other, "ORGANIZATION_OWNER")
    url = f"/v1/organizations/{org.id}/workspaces"
    body = _assert_error(
        await client.post(url, json={"name": "x"}, headers=bearer(member_token)), 403
    )
    assert body["message"] == "missing permission organization.workspaces.create"
    _assert_error(await client.post(url, json={"name": "x"}, headers=bearer(outsider_token)), 404)
    _assert_error(
        await client.post(
            f"/v1/organizations/{NOPE}/workspaces", json={"name": "x"}, headers=bearer(member_token)
        ),
        404,
    )
    assert await _count(world, Workspace) == 1


async def test_create_rejects_bad_bodies_and_changes_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    url = f"/v1/organizations/{org.id}/workspaces"
    for bad in (
        {},
        {"description": "no name"},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 51},
        {"name": 7},
        {"name": None},
        {"name": "ok", "cicdEnforcedDefault": "true"},
        {"name": "ok", "cicdEnforcedDefault": 1},
        {"name": "ok", "description": 5},
        {"name": "ok", "description": "d" * 2049},
        {"name": "a\x00b"},  # NUL: PostgreSQL cannot store it
        {"name": "ok", "description": "\x00"},
        [{"name": "ok"}],
    ):
        body = _assert_error(await client.post(url, json=bad, headers=bearer(token)), 400)
        assert body["message"], bad
    for raw, ctype in (("{not json", "application/json"), ("name=x", "text/plain")):
        r = await client.post(url, content=raw, headers=bearer(token) | {"content-type": ctype})
        _assert_error(r, 400)
    _assert_error(
        await client.post(
            "/v1/organizations/NOT-AN-ID/workspaces", json={"name": "x"}, headers=bearer(token)
        ),
        400,
    )
    assert await _count(world, Workspace) == 0
    assert await _count(world, AuditEvent, AuditEvent.action == "workspace.create") == 0


async def _two_workspaces(world: World) -> tuple[Organization, Workspace, Workspace]:
    org = await world.org("Acme")
    return org, await world.workspace(org, "Beta"), await world.workspace(org, "Alpha")


async def test_list_shows_what_the_caller_may_see(client: httpx.AsyncClient, world: World) -> None:
    org, ws1, ws2 = await _two_workspaces(world)
    other = await world.org("Other")
    foreign = await world.workspace(other, "Foreign")
    _, owner_token = await world.member(org, "ORGANIZATION_OWNER")
    ws_member = await world.user()
    await world.roles(org, ws_member, workspaces=[(ws1.id, "WORKSPACE_MEMBER")])
    _, plain_token = await world.member(org, "ORGANIZATION_MEMBER")

    async def listed(token: str, query: str = "") -> list[str]:
        r = await client.get(
            f"/platform/v1beta1/organizations/{org.id}/workspaces?{query}", headers=bearer(token)
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert_astro(body, "WorkspacesPaginated")
        assert body["totalCount"] == len(body["workspaces"])
        assert all(w["organizationId"] == org.id for w in body["workspaces"])
        return [w["name"] for w in body["workspaces"]]

    assert await listed(owner_token, "sorts=name:asc") == ["Alpha", "Beta"]
    assert await listed(await world.token(ws_member)) == ["Beta"]
    assert await listed(plain_token) == []
    # a filter never reaches outside the organization or past visibility
    assert await listed(owner_token, f"workspaceIds={foreign.id}") == []
    assert await listed(await world.token(ws_member), f"workspaceIds={ws2.id}") == []


async def test_list_filters_sorts_and_pages(client: httpx.AsyncClient, world: World) -> None:
    org, ws1, ws2 = await _two_workspaces(world)
    await world.workspace(org, "Gamma")
    _, token = await world.member(org, "ORGANIZATION_OWNER")

    async def names(query: str) -> list[str]:
        r = await client.get(
            f"/v1/organizations/{org.id}/workspaces?{query}", headers=bearer(token)
        )
        assert r.status_code == 200, r.text
        assert_astro(r.json(), "WorkspacesPaginated")
        return [w["name"] for w in r.json()["workspaces"]]

    assert await names("sorts=name:desc") == ["Gamma", "Beta", "Alpha"]
    assert await names("sorts=createdAt:asc") == ["Beta", "Alpha", "Gamma"]
    assert await names(f"workspaceIds={ws1.id}&workspaceIds={ws2.id}&sorts=name:asc") == [
        "Alpha",
        "Beta",
    ]
    assert await names("names=Gamma&names=Alpha&sorts=name:asc") == ["Alpha", "Gamma"]
    assert await names("names=Nope") == []
    pages = [await names(f"sorts=name:asc&limit=2&offset={o}") for o in (0, 2)]
    assert pages == [["Alpha", "Beta"], ["Gamma"]]
    r = await client.get(f"/v1/organizations/{org.id}/workspaces?limit=0", headers=bearer(token))
    assert r.json() == {"workspaces": [], "limit": 0, "offset": 0, "totalCount": 3}


async def test_list_rejects_bad_parameters(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    for query in (
        "limit=1001",
        "limit=-1",
        "offset=-1",
        "sorts=id:asc",
        "sorts=name",
        "sorts=name:sideways",
        "workspaceIds=NOT-AN-ID",
        "names=",
        "names=a%00b",
    ):
        r = await client.get(
            f"/v1/organizations/{org.id}/workspaces?{query}", headers=bearer(token)
        )
        assert _assert_error(r, 400)["fieldErrors"], query


async def test_get_workspace_permissions_and_isolation(
    client: httpx.AsyncClient, world: World
) -> None:
    org, ws1, ws2 = await _two_workspaces(world)
    other = await world.org("Other")
    foreign = await world.workspace(other, "Foreign")
    user = await world.user()
    await world.roles(org, user, workspaces=[(ws1.id, "WORKSPACE_ACCESSOR")])
    token = await world.token(user)
    base = f"/v1/organizations/{org.id}/workspaces"
    r = await client.get(f"{base}/{ws1.id}", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert_astro(r.json(), "Workspace")
    assert r.json()["id"] == ws1.id and r.json()["createdBy"] == {"id": ""}
    body = _assert_error(await client.get(f"{base}/{ws2.id}", headers=bearer(token)), 403)
    assert body["message"] == "missing permission workspace.get"
    # another organization's workspace, through my organization or through its own
    _assert_error(await client.get(f"{base}/{foreign.id}", headers=bearer(token)), 404)
    _assert_error(
        await client.get(
            f"/v1/organizations/{other.id}/workspaces/{foreign.id}", headers=bearer(token)
        ),
        404,
    )
    _assert_error(await client.get(f"{base}/{NOPE}", headers=bearer(token)), 404)
    for bad in ("NOT-AN-ID", "c" * 24):
        _assert_error(await client.get(f"{base}/{bad}", headers=bearer(token)), 400)


async def test_update_workspace(client: httpx.AsyncClient, world: World) -> None:
    org, ws1, _ = await _two_workspaces(world)
    user = await world.user(full_name="Wes")
    await world.roles(org, user, workspaces=[(ws1.id, "WORKSPACE_OWNER")])
    token = await world.token(user)
    url = f"/iam/v1beta1/organizations/{org.id}/workspaces/{ws1.id}"
    r = await client.post(url, json=UPDATE | {"unknown": 1}, headers=bearer(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert_astro(body, "Workspace")
    assert {k: body[k] for k in UPDATE} == UPDATE
    assert body["updatedBy"] == _profile(user) and body["createdBy"] == {"id": ""}
    assert (await client.get(url, headers=bearer(token))).json() == body
    assert await _count(world, AuditEvent, AuditEvent.action == "workspace.update") == 1


async def test_update_rejects_and_refuses_without_changing_anything(
    client: httpx.AsyncClient, world: World
) -> None:
    org, ws1, ws2 = await _two_workspaces(world)
    other = await world.org("Other")
    foreign = await world.workspace(other, "Foreign")
    user = await world.user()
    await world.roles(
        org, user, workspaces=[(ws1.id, "WORKSPACE_OWNER"), (ws2.id, "WORKSPACE_MEMBER")]
    )
    token = await world.token(user)
    base = f"/v1/organizations/{org.id}/workspaces"
    for bad in (
        {"name": "x"},  # description and cicdEnforcedDefault are required
        {k: v for k, v in UPDATE.items() if k != "name"},
        UPDATE | {"name": "x" * 51},
        UPDATE | {"cicdEnforcedDefault": "no"},
        UPDATE | {"description": None},
        "Renamed",
    ):
        _assert_error(await client.post(f"{base}/{ws1.id}", json=bad, headers=bearer(token)), 400)
    r = await client.post(f"{base}/{ws2.id}", json=UPDATE, headers=bearer(token))
    assert _assert_error(r, 403)["message"] == "missing permission workspace.update"
    _assert_error(
        await client.post(f"{base}/{foreign.id}", json=UPDATE, headers=bearer(token)), 404
    )
    for ws, name in ((ws1, "Beta"), (ws2, "Alpha"), (foreign, "Foreign")):
        row = await _workspace_row(world, ws.id)
        assert row is not None
        assert (row.name, row.description, row.cicd_enforced_default) == (name, "", False)
    assert await _count(world, AuditEvent, AuditEvent.action == "workspace.update") == 0


async def test_delete_workspace_takes_its_deployments_and_roles(
    client: httpx.AsyncClient, world: World
) -> None:
    org, ws1, ws2 = await _two_workspaces(world)
    dep = await world.deployment(ws1)
    kept = await world.deployment(ws2)
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    user = await world.user()
    await world.roles(
        org,
        user,
        workspaces=[(ws1.id, "WORKSPACE_MEMBER"), (ws2.id, "WORKSPACE_MEMBER")],
        deployments=[(dep.id, "DEPLOYMENT_ADMIN")],
    )
    url = f"/platform/v1beta1/organizations/{org.id}/workspaces/{ws1.id}"
    r = await client.delete(url, headers=bearer(token))
    assert r.status_code == 204 and r.content == b""
    _assert_error(await client.get(url, headers=bearer(token)), 404)
    _assert_error(await client.delete(url, headers=bearer(token)), 404)
    assert await _workspace_row(world, ws1.id) is None
    assert await _count(world, Deployment, Deployment.id == dep.id) == 0
    assert await _count(world, Deployment, Deployment.id == kept.id) == 1
    assert await _count(world, RoleBinding, RoleBinding.workspace_id == ws1.id) == 0
    assert await _count(world, RoleBinding, RoleBinding.workspace_id == ws2.id) == 1
    assert await _count(world, AuditEvent, AuditEvent.action == "workspace.delete") == 1


async def test_delete_is_refused_without_permission(
    client: httpx.AsyncClient, world: World
) -> None:
    org, ws1, _ = await _two_workspaces(world)
    other = await world.org("Other")
    foreign = await world.workspace(other, "Foreign")
    user = await world.user()
    await world.roles(org, user, workspaces=[(ws1.id, "WORKSPACE_OPERATOR")])
    token = await world.token(user)
    base = f"/v1/organizations/{org.id}/workspaces"
    r = await client.delete(f"{base}/{ws1.id}", headers=bearer(token))
    assert _assert_error(r, 403)["message"] == "missing permission workspace.delete"
    _assert_error(await client.delete(f"{base}/{foreign.id}", headers=bearer(token)), 404)
    _assert_error(await client.delete(f"{base}/NOT-AN-ID", headers=bearer(token)), 400)
    assert await _workspace_row(world, ws1.id) is not None
    assert await _workspace_row(world, foreign.id) is not None


async def test_endpoints_require_a_token(client: httpx.AsyncClient, world: World) -> None:
    org, ws1, _ = await _two_workspaces(world)
    base = f"/v1/organizations/{org.id}/workspaces"
    for method, url, body in (
        ("GET", base, None),
        ("POST", base, {"name": "x"}),
        ("GET", f"{base}/{ws1.id}", None),
        ("POST", f"{base}/{ws1.id}", UPDATE),
        ("DELETE", f"{base}/{ws1.id}", None),
    ):
        _assert_error(await client.request(method, url, json=body), 401)
    row = await _workspace_row(world, ws1.id)
    assert row is not None and row.name == "Beta"
    assert await _count(world, Workspace) == 2


async def test_workspace_api_token_reaches_only_its_workspace(
    client: httpx.AsyncClient, world: World
) -> None:
    """A token bound to one workspace sees and manages that workspace, not the organization."""
    org, ws1, ws2 = await _two_workspaces(world)
    token = await api_token(world, org, RoleSet(None, [(ws1.id, "WORKSPACE_OWNER")], [], []))
    base = f"/v1/organizations/{org.id}/workspaces"
    r = await client.get(base, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert [w["id"] for w in r.json()["workspaces"]] == [ws1.id]
    r = await client.post(f"{base}/{ws1.id}", json=UPDATE, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert_astro(r.json(), "Workspace")
    token_id = r.json()["updatedBy"]["id"]
    assert r.json()["updatedBy"] == {
        "id": token_id,
        "subjectType": "SERVICEKEY",
        "apiTokenName": "ci-token",
    }
    _assert_error(await client.get(f"{base}/{ws2.id}", headers=bearer(token)), 403)
    _assert_error(await client.post(base, json={"name": "x"}, headers=bearer(token)), 403)
    _assert_error(await client.get(f"/v1/organizations/{org.id}", headers=bearer(token)), 404)
    # Another organization's list: 403 (Astro documents no 404 for ListWorkspaces).
    other = await world.org("Other")
    _assert_error(
        await client.get(f"/v1/organizations/{other.id}/workspaces", headers=bearer(token)), 403
    )
