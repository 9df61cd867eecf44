"""Astro custom roles: list with the built-in catalogue, create, read, update (rename carries
bindings along), delete (refused while assigned), and their effect on permission checks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.authz.catalogue import ROLES
from tenantry.db.models import AuditEvent, CustomRole, RoleBinding
from tenantry.directory.members import DagRole
from tests.faces.errors import NO_TOKEN, astro_error, astro_invalid
from tests.factories import World, bearer
from tests.spec import assert_astro

PREFIXES = ("/v1", "/iam/v1beta1", "/platform/v1beta1")


async def _check(
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


async def _count(world: World, model: Any) -> int:
    async with world.database.transaction() as db:
        return await db.scalar(select(func.count()).select_from(model)) or 0


async def test_create_get_and_list_a_custom_role(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    owner, token = await world.member(org, "ORGANIZATION_OWNER", full_name="Olga")
    body = {
        "name": "Deployment_Viewer",
        "description": "Reads deployments",
        "permissions": ["deployment.get", "deployment.envVars.get", "deployment.get"],
        "restrictedWorkspaceIds": [ws.id],
        "scopeType": "DEPLOYMENT",
    }
    r = await client.post(f"/v1/organizations/{org.id}/roles", json=body, headers=bearer(token))
    assert r.status_code == 200, r.text
    created = r.json()
    assert_astro(created, "RoleWithPermission")
    assert created["name"] == "Deployment_Viewer" and created["scopeType"] == "DEPLOYMENT"
    assert created["permissions"] == ["deployment.envVars.get", "deployment.get"]
    assert created["restrictedWorkspaceIds"] == [ws.id]
    assert created["description"] == "Reads deployments"
    assert created["createdBy"]["id"] == owner.id and created["createdBy"]["fullName"] == "Olga"
    assert created["updatedBy"] == created["createdBy"]
    for prefix in PREFIXES:
        got = await client.get(
            f"{prefix}/organizations/{org.id}/roles/{created['id']}", headers=bearer(token)
        )
        assert got.status_code == 200 and got.json() == created
    listed = await client.get(f"/v1/organizations/{org.id}/roles", headers=bearer(token))
    assert listed.status_code == 200
    page = listed.json()
    assert_astro(page, "RolesPaginated")
    assert "defaultRoles" not in page  # only with includeDefaultRoles=true, as in Astro
    assert page["totalCount"] == 1 and page["offset"] == 0 and page["limit"] == 20
    assert page["roles"] == [{k: v for k, v in created.items() if k != "permissions"}]
    async with world.database.transaction() as db:
        event = await db.scalar(
            select(AuditEvent).where(AuditEvent.action == "organization.role.create")
        )
    assert event is not None and event.target_id == created["id"]


async def test_default_roles_and_filters(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    _, token = await world.member(org)  # ORGANIZATION_MEMBER may list roles
    await world.custom_role(org, "B_dep", ["deployment.get"])
    await world.custom_role(org, "A_dag", ["deployment.airflow.dag.get"], scope="DAG")
    url = f"/v1/organizations/{org.id}/roles"
    r = await client.get(f"{url}?includeDefaultRoles=true&sorts=name:asc", headers=bearer(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert_astro(body, "RolesPaginated")
    defaults = {d["name"]: d for d in body["defaultRoles"]}
    assert set(defaults) == {n for n, role in ROLES.items() if role.scope.value != "SYSTEM"}
    assert defaults["DAG_VIEWER"]["scopeType"] == "DAG"
    assert defaults["DEPLOYMENT_ADMIN"]["permissions"] == sorted(
        ROLES["DEPLOYMENT_ADMIN"].permissions
    )
    assert [x["name"] for x in body["roles"]] == ["A_dag", "B_dep"]
    r = await client.get(
        f"{url}?includeDefaultRoles=true&scopeTypes=WORKSPACE&scopeTypes=DAG",
        headers=bearer(token),
    )
    body = r.json()
    assert {d["scopeType"] for d in body["defaultRoles"]} == {"WORKSPACE", "DAG"}
    assert [x["name"] for x in body["roles"]] == ["A_dag"] and body["totalCount"] == 1
    r = await client.get(f"{url}?scopeTypes=ORGANIZATION", headers=bearer(token))
    assert r.json()["roles"] == [] and r.json()["totalCount"] == 0
    names = [
        x["name"]
        for x in (await client.get(f"{url}?sorts=name:desc", headers=bearer(token))).json()["roles"]
    ]
    assert names == ["B_dep", "A_dag"]
    r = await client.get(f"{url}?sorts=name:asc&limit=1&offset=1", headers=bearer(token))
    assert [x["name"] for x in r.json()["roles"]] == ["B_dep"] and r.json()["totalCount"] == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("scopeTypes=SYSTEM", "scopeTypes.0"),
        ("sorts=name", "sorts.0"),
        ("sorts=id:asc", "sorts.0"),
        ("limit=1001", "limit"),
        ("offset=-1", "offset"),
    ],
)
async def test_list_rejects_bad_parameters(
    client: httpx.AsyncClient, world: World, query: str, field: str
) -> None:
    org = await world.org()
    _, token = await world.member(org)
    r = await client.get(f"/v1/organizations/{org.id}/roles?{query}", headers=bearer(token))
    assert r.status_code == 400, r.text
    assert_astro(r.json(), "Error")
    assert r.json()["fieldErrors"]
    astro_invalid(r, field)


async def test_a_custom_deployment_role_grants_exactly_its_permissions(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    dep = await world.deployment(ws)
    _, owner_token = await world.member(org, "ORGANIZATION_OWNER")
    user, token = await world.member(org)
    r = await client.post(
        f"/v1/organizations/{org.id}/roles",
        json={
            "name": "Env_Reader",
            "permissions": ["deployment.get", "deployment.envVars.get"],
            "scopeType": "DEPLOYMENT",
        },
        headers=bearer(owner_token),
    )
    assert r.status_code == 200, r.text
    role_id = r.json()["id"]
    scope = {"type": "DEPLOYMENT", "id": dep.id}
    assert not await _check(client, token, user.id, "deployment.envVars.get", scope)
    r = await client.post(
        f"/v1/organizations/{org.id}/users/{user.id}/roles",
        json={
            "organizationRole": "ORGANIZATION_MEMBER",
            "deploymentRoles": [{"deploymentId": dep.id, "role": "Env_Reader"}],
        },
        headers=bearer(owner_token),
    )
    assert r.status_code == 200, r.text
    assert await _check(client, token, user.id, "deployment.envVars.get", scope)
    assert await _check(client, token, user.id, "deployment.get", scope)
    assert not await _check(client, token, user.id, "deployment.update", scope)
    assert not await _check(client, token, user.id, "deployment.envVars.update", scope)
    assert not await _check(
        client, token, user.id, "workspace.get", {"type": "WORKSPACE", "id": ws.id}
    )
    # a new permission set applies at once
    r = await client.post(
        f"/v1/organizations/{org.id}/roles/{role_id}",
        json={"name": "Env_Reader", "permissions": ["deployment.envVars.update"]},
        headers=bearer(owner_token),
    )
    assert r.status_code == 200, r.text
    assert_astro(r.json(), "RoleWithPermission")
    assert await _check(client, token, user.id, "deployment.envVars.update", scope)
    assert not await _check(client, token, user.id, "deployment.envVars.get", scope)


async def test_a_custom_dag_role_applies_to_its_dag(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    dep = await world.deployment(ws)
    _, owner_token = await world.member(org, "ORGANIZATION_OWNER")
    user, token = await world.member(org)
    r = await client.post(
        f"/v1/organizations/{org.id}/roles",
        json={
            "name": "Trigger",
            "permissions": ["deployment.airflow.dag.trigger"],
            "scopeType": "DAG",
        },
        headers=bearer(owner_token),
    )
    assert r.status_code == 200, r.text
    assert_astro(r.json(), "RoleWithPermission")
    assert r.json()["scopeType"] == "DAG"
    r = await client.post(
        f"/v1/organizations/{org.id}/users/{user.id}/roles",
        json={
            "organizationRole": "ORGANIZATION_MEMBER",
            "dagRoles": [{"deploymentId": dep.id, "role": "Trigger", "dagId": "etl"}],
        },
        headers=bearer(owner_token),
    )
    assert r.status_code == 200, r.text
    etl = {"type": "DAG", "id": dep.id, "dagId": "etl"}
    other = {"type": "DAG", "id": dep.id, "dagId": "other"}
    assert await _check(client, token, user.id, "deployment.airflow.dag.trigger", etl)
    assert not await _check(client, token, user.id, "deployment.airflow.dag.trigger", other)
    assert not await _check(client, token, user.id, "deployment.airflow.dag.delete", etl)
    # a DAG role cannot be bound at deployment scope
    r = await client.post(
        f"/v1/organizations/{org.id}/users/{user.id}/roles",
        json={
            "organizationRole": "ORGANIZATION_MEMBER",
            "deploymentRoles": [{"deploymentId": dep.id, "role": "Trigger"}],
        },
        headers=bearer(owner_token),
    )
    assert r.status_code == 400
    astro_error(r, 400, "invalid roles", fields=["deploymentRoles[0].role"])


async def test_renaming_a_role_keeps_its_assignments(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    dep = await world.deployment(ws)
    _, owner_token = await world.member(org, "ORGANIZATION_OWNER")
    user, token = await world.member(org)
    role = await world.custom_role(org, "Old_Name", ["deployment.get"])
    await world.roles(org, user, deployments=[(dep.id, "Old_Name")])
    r = await client.post(
        f"/iam/v1beta1/organizations/{org.id}/roles/{role.id}",
        json={"name": "New_Name", "permissions": ["deployment.get"], "description": "renamed"},
        headers=bearer(owner_token),
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "New_Name" and r.json()["description"] == "renamed"
    got = await client.get(
        f"/v1/organizations/{org.id}/users/{user.id}", headers=bearer(owner_token)
    )
    assert got.json()["deploymentRoles"] == [{"deploymentId": dep.id, "role": "New_Name"}]
    assert await _check(
        client, token, user.id, "deployment.get", {"type": "DEPLOYMENT", "id": dep.id}
    )


async def test_name_conflicts(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    await world.custom_role(org, "Taken")
    second = await world.custom_role(org, "Second")
    other_org = await world.org("Other")
    await world.custom_role(other_org, "Elsewhere")
    body = {"name": "Taken", "permissions": ["deployment.get"], "scopeType": "DEPLOYMENT"}
    taken = "a custom role named 'Taken' already exists in this organization"
    r = await client.post(f"/v1/organizations/{org.id}/roles", json=body, headers=bearer(token))
    assert r.status_code == 400  # a conflict: Astro documents no 409
    astro_error(r, 400, taken)
    r = await client.post(
        f"/v1/organizations/{org.id}/roles/{second.id}",
        json={"name": "Taken", "permissions": ["deployment.get"]},
        headers=bearer(token),
    )
    assert r.status_code == 400  # a conflict: Astro documents no 409
    astro_error(r, 400, taken)
    body["name"] = "Elsewhere"  # names are per organization
    r = await client.post(f"/v1/organizations/{org.id}/roles", json=body, headers=bearer(token))
    assert r.status_code == 200
    assert await _count(world, CustomRole) == 4


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"name": "R", "permissions": ["workspace.update"], "scopeType": "DEPLOYMENT"},
            "permissions[0]",
        ),
        (
            {"name": "R", "permissions": ["organization.get"], "scopeType": "DEPLOYMENT"},
            "permissions[0]",
        ),
        (
            {"name": "R", "permissions": ["deployment.fly"], "scopeType": "DEPLOYMENT"},
            "permissions[0]",
        ),
        ({"name": "R", "permissions": ["deployment.get"], "scopeType": "DAG"}, "permissions[0]"),
        ({"name": "R", "permissions": [], "scopeType": "DEPLOYMENT"}, "permissions"),
        ({"name": "R", "permissions": "deployment.get", "scopeType": "DEPLOYMENT"}, "permissions"),
        ({"name": "R", "permissions": ["deployment.get"], "scopeType": "WORKSPACE"}, "scopeType"),
        ({"name": "R", "permissions": ["deployment.get"]}, "scopeType"),
        ({"permissions": ["deployment.get"], "scopeType": "DEPLOYMENT"}, "name"),
        ({"name": "   ", "permissions": ["deployment.get"], "scopeType": "DEPLOYMENT"}, "name"),
        (
            {
                "name": "DEPLOYMENT_ADMIN",
                "permissions": ["deployment.get"],
                "scopeType": "DEPLOYMENT",
            },
            "name",
        ),
        (
            {
                "name": "dag_viewer",
                "permissions": ["deployment.airflow.dag.get"],
                "scopeType": "DAG",
            },
            "name",
        ),
        ({"name": "x" * 129, "permissions": ["deployment.get"], "scopeType": "DEPLOYMENT"}, "name"),
        (
            {
                "name": "R",
                "permissions": ["deployment.get"],
                "scopeType": "DEPLOYMENT",
                "restrictedWorkspaceIds": ["OTHER_WS"],
            },
            "restrictedWorkspaceIds[0]",
        ),
        (
            {
                "name": "R",
                "permissions": ["deployment.get"],
                "scopeType": "DEPLOYMENT",
                "restrictedWorkspaceIds": ["WS", "WS"],
            },
            "restrictedWorkspaceIds[1]",
        ),
        ([1], "body"),
        ("{nope", None),
    ],
)
async def test_bad_roles_are_400_and_change_nothing(
    client: httpx.AsyncClient, world: World, body: Any, field: str | None
) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    other_ws = await world.workspace(await world.org("Other"))
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    raw = body if isinstance(body, str) else httpx.Request("POST", "/", json=body).content.decode()
    raw = raw.replace('"OTHER_WS"', f'"{other_ws.id}"').replace('"WS"', f'"{ws.id}"')
    r = await client.post(
        f"/v1/organizations/{org.id}/roles",
        content=raw,
        headers=bearer(token) | {"content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    astro_invalid(r, field)
    assert await _count(world, CustomRole) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "R", "permissions": ["workspace.update"]}, "permissions[0]"),
        ({"name": "R", "permissions": []}, "permissions"),
        ({"permissions": ["deployment.get"]}, "name"),
        ({"name": "DAG_AUTHOR", "permissions": ["deployment.get"]}, "name"),
        (
            {"name": "R", "permissions": ["deployment.get"], "restrictedWorkspaceIds": ["nope"]},
            "restrictedWorkspaceIds[0]",
        ),
    ],
)
async def test_bad_updates_are_400_and_change_nothing(
    client: httpx.AsyncClient, world: World, body: Any, field: str
) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    role = await world.custom_role(org, "Keep", ["deployment.get"])
    url = f"/v1/organizations/{org.id}/roles/{role.id}"
    r = await client.post(url, json=body, headers=bearer(token))
    assert r.status_code == 400, r.text
    astro_invalid(r, field)
    got = (await client.get(url, headers=bearer(token))).json()
    assert got["name"] == "Keep" and got["permissions"] == ["deployment.get"]


async def test_delete_is_refused_while_the_role_is_assigned(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    dep = await world.deployment(ws)
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    user = await world.user()
    role = await world.custom_role(org, "In_Use")
    await world.roles(org, user, deployments=[(dep.id, "In_Use")])
    url = f"/platform/v1beta1/organizations/{org.id}/roles/{role.id}"
    r = await client.delete(url, headers=bearer(token))
    assert r.status_code == 400, r.text  # a conflict: Astro documents no 409
    assert_astro(r.json(), "Error")
    assert "still assigned" in r.json()["message"]
    assert (await client.get(url, headers=bearer(token))).status_code == 200
    await world.roles(org, user)  # no deployment roles any more
    r = await client.delete(url, headers=bearer(token))
    assert r.status_code == 204 and r.content == b""
    astro_error(await client.get(url, headers=bearer(token)), 404, "role not found")
    astro_error(await client.delete(url, headers=bearer(token)), 404, "role not found")
    async with world.database.transaction() as db:
        bindings = await db.scalar(
            select(func.count()).select_from(RoleBinding).where(RoleBinding.role == "In_Use")
        )
    assert bindings == 0


async def test_members_may_read_but_not_change_roles(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    _, token = await world.member(org)
    role = await world.custom_role(org, "Existing")
    base = f"/v1/organizations/{org.id}/roles"
    assert (await client.get(base, headers=bearer(token))).status_code == 200
    assert (await client.get(f"{base}/{role.id}", headers=bearer(token))).status_code == 200
    body = {"name": "Mine", "permissions": ["deployment.get"], "scopeType": "DEPLOYMENT"}
    r = await client.post(base, json=body, headers=bearer(token))
    assert r.status_code == 403
    astro_error(r, 403, "missing permission organization.roles.create")
    r = await client.post(f"{base}/{role.id}", json=body, headers=bearer(token))
    assert r.status_code == 403
    astro_error(r, 403, "missing permission organization.roles.update")
    r = await client.delete(f"{base}/{role.id}", headers=bearer(token))
    astro_error(r, 403, "missing permission organization.roles.delete")
    astro_error(await client.get(base), 401, NO_TOKEN)
    astro_error(await client.delete(f"{base}/{role.id}"), 401, NO_TOKEN)
    async with world.database.transaction() as db:
        names = list(await db.scalars(select(CustomRole.name)))
    assert names == ["Existing"]


async def test_other_organizations_roles_are_404(client: httpx.AsyncClient, world: World) -> None:
    org_a, org_b = await world.org("A"), await world.org("B")
    _, token = await world.member(org_a, "ORGANIZATION_OWNER")
    role_b = await world.custom_role(org_b, "B_Role")
    body = {"name": "Hijack", "permissions": ["deployment.get"]}
    for org_id in (org_a.id, org_b.id):
        url = f"/v1/organizations/{org_id}/roles/{role_b.id}"
        for r in (
            await client.get(url, headers=bearer(token)),
            await client.post(url, json=body, headers=bearer(token)),
            await client.delete(url, headers=bearer(token)),
        ):
            assert r.status_code == 404, r.text
            # org A's path: no such role there; org B's: the caller cannot see the org
            astro_error(
                r, 404, "role not found" if org_id == org_a.id else "organization not found"
            )
    r = await client.get(f"/v1/organizations/{org_b.id}/roles", headers=bearer(token))
    assert r.status_code == 404
    astro_error(r, 404, "organization not found")
    r = await client.post(
        f"/v1/organizations/{org_b.id}/roles",
        json=body | {"scopeType": "DEPLOYMENT"},
        headers=bearer(token),
    )
    assert r.status_code == 404
    astro_error(r, 404, "organization not found")
    async with world.database.transaction() as db:
        names = list(await db.scalars(select(CustomRole.name)))
    assert names == ["B_Role"]
    # org B's custom role cannot be bound in org A
    ws = await world.workspace(org_a)
    dep = await world.deployment(ws)
    user, _ = await world.member(org_a)
    r = await client.post(
        f"/v1/organizations/{org_a.id}/users/{user.id}/roles",
        json={
            "organizationRole": "ORGANIZATION_MEMBER",
            "deploymentRoles": [{"deploymentId": dep.id, "role": "B_Role"}],
        },
        headers=bearer(token),
    )
    assert r.status_code == 400
    astro_error(r, 400, "invalid roles", fields=["deploymentRoles[0].role"])


async def test_dag_tag_bindings_follow_a_rename(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    dep = await world.deployment(ws)
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    user = await world.user()
    role = await world.custom_role(org, "Tagged", ["deployment.airflow.dag.get"], scope="DAG")
    await world.roles(org, user, dags=[DagRole(dep.id, "Tagged", dag_tag="etl")])
    r = await client.post(
        f"/v1/organizations/{org.id}/roles/{role.id}",
        json={"name": "Tagged2", "permissions": ["deployment.airflow.dag.get"]},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    got = await client.get(f"/v1/organizations/{org.id}/users/{user.id}", headers=bearer(token))
    assert got.json()["dagRoles"] == [{"deploymentId": dep.id, "role": "Tagged2", "dagTag": "etl"}]


async def test_restricted_custom_role_only_binds_in_its_workspaces(
    client: httpx.AsyncClient, world: World
) -> None:
    from tenantry.directory import custom_roles
    from tenantry.identity.principals import system_principal

    org = await world.org()
    ws_in, ws_out = await world.workspace(org, "in"), await world.workspace(org, "out")
    dep_in, dep_out = await world.deployment(ws_in), await world.deployment(ws_out)
    async with world.database.transaction() as db:
        await custom_roles.create_role(
            db,
            system_principal(),
            org.id,
            "DEPLOYMENT",
            custom_roles.RoleFields(
                "NARROW", ["deployment.get"], restricted_workspace_ids=[ws_in.id]
            ),
        )
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    user, _ = await world.member(org)
    url = f"/v1/organizations/{org.id}/users/{user.id}/roles"

    def body(dep_id: str) -> dict[str, object]:
        return {
            "organizationRole": "ORGANIZATION_MEMBER",
            "deploymentRoles": [{"deploymentId": dep_id, "role": "NARROW"}],
        }

    refused = await client.post(url, json=body(dep_out.id), headers=bearer(token))
    assert refused.status_code == 400
    assert refused.json()["fieldErrors"][0]["field"] == "deploymentRoles[0].role"
    assert "restricted" in refused.json()["fieldErrors"][0]["message"]
    ok = await client.post(url, json=body(dep_in.id), headers=bearer(token))
    assert ok.status_code == 200 and ok.json()["deploymentRoles"][0]["role"] == "NARROW"
