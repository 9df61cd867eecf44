"""Astro Platform deployments: a deployment is a scope; what the client sends is kept and
echoed, what it never sent renders as the neutral value the schema's type allows."""

from __future__ import annotations

import copy
from typing import Any

import httpx
from sqlalchemy import func, select

from tenantry.db.models import AuditEvent, Deployment, Organization, RoleBinding, User, Workspace
from tenantry.faces.astro.schemas_platform import SERVER_OWNED, DeploymentBody
from tests.factories import World, bearer
from tests.spec import assert_astro, astro_components

PREFIXES = ("/v1", "/iam/v1beta1", "/platform/v1beta1")
NOPE = "cnope00000000000000000000"
NEUTRAL = {
    "airflowVersion": "",
    "astroRuntimeVersion": "",
    "imageRepository": "",
    "imageTag": "",
    "isCicdEnforced": False,
    "isDagDeployEnabled": False,
    "namespace": "",
    "runtimeVersion": "",
    "schedulerCpu": "",
    "schedulerMemory": "",
    "schedulerReplicas": 0,
    "status": "UNKNOWN",
    "webServerAirflowApiUrl": "",
    "webServerCpu": "",
    "webServerIngressHostname": "",
    "webServerMemory": "",
    "webServerUrl": "",
}


def standard(ws_id: str) -> dict[str, Any]:
    """A complete CreateStandardDeploymentRequest."""
    return {
        "name": "prod",
        "workspaceId": ws_id,
        "type": "STANDARD",
        "description": "Production",
        "astroRuntimeVersion": "9.1.0",
        "cloudProvider": "AWS",
        "region": "us-east-1",
        "defaultTaskPodCpu": "0.5",
        "defaultTaskPodMemory": "1Gi",
        "executor": "CELERY",
        "isCicdEnforced": True,
        "isDagDeployEnabled": True,
        "isDevelopmentMode": True,
        "isHighAvailability": False,
        "resourceQuotaCpu": "160",
        "resourceQuotaMemory": "320Gi",
        "schedulerSize": "SMALL",
        "contactEmails": ["ops@acme.io"],
        "workloadIdentity": "arn:aws:iam::1:role/x",
        "environmentVariables": [
            {"key": "MODE", "value": "prod", "isSecret": False},
            {"key": "PASSWORD", "value": "hunter2", "isSecret": True},
        ],
        "workerQueues": [
            {
                "name": "default",
                "isDefault": True,
                "astroMachine": "A5",
                "minWorkerCount": 0,
                "maxWorkerCount": 10,
                "workerConcurrency": 5,
            }
        ],
        "scalingSpec": {
            "hibernationSpec": {
                "override": {"isHibernating": True, "overrideUntil": "2030-01-01T00:00:00Z"},
                "schedules": [
                    {
                        "hibernateAtCron": "0 20 * * *",
                        "wakeAtCron": "0 6 * * *",
                        "isEnabled": True,
                        "description": "nights",
                    }
                ],
            }
        },
    }


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


async def _dep_row(world: World, dep_id: str) -> Deployment | None:
    async with world.database.transaction() as db:
        return await db.get(Deployment, dep_id)


async def _setup(world: World) -> tuple[Organization, Workspace, Workspace, User, str]:
    org = await world.org("Acme")
    ws1, ws2 = await world.workspace(org, "one"), await world.workspace(org, "two")
    owner, token = await world.member(org, "ORGANIZATION_OWNER", full_name="Olive")
    return org, ws1, ws2, owner, token


async def test_create_with_name_and_workspace_only(client: httpx.AsyncClient, world: World) -> None:
    """Nothing is invented: required fields never given render as neutral values, optional
    ones are absent."""
    org, ws1, _, owner, token = await _setup(world)
    for prefix in PREFIXES:
        r = await client.post(
            f"{prefix}/organizations/{org.id}/deployments",
            json={"name": f"d{prefix}", "workspaceId": ws1.id},
            headers=bearer(token),
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert_astro(body, "Deployment")
        assert body == NEUTRAL | {
            "id": body["id"],
            "name": f"d{prefix}",
            "description": "",
            "organizationId": org.id,
            "workspaceId": ws1.id,
            "workspaceName": "one",
            "createdAt": body["createdAt"],
            "updatedAt": body["createdAt"],
            "createdBy": _profile(owner),
            "updatedBy": _profile(owner),
        }
        got = await client.get(
            f"/v1/organizations/{org.id}/deployments/{body['id']}", headers=bearer(token)
        )
        assert got.status_code == 200 and got.json() == body
    assert await _count(world, Deployment, Deployment.workspace_id == ws1.id) == 3
    assert await _count(world, AuditEvent, AuditEvent.action == "deployment.create") == 3


async def test_full_request_is_kept_and_echoed(client: httpx.AsyncClient, world: World) -> None:
    org, ws1, _, _, token = await _setup(world)
    request = standard(ws1.id)
    assert_astro(request, "CreateStandardDeploymentRequest")  # the test sends what Astro takes
    extra = {
        "terraformManaged": True,
        "x-labels": {"team": "data", "tier": [1, 2, None]},
        "namespace": "weightless-diameter-8927",  # response fields a client may record
        "status": "HEALTHY",
        "webServerUrl": "acme.example/d1",
        # fields Tenantry owns are never taken from the client
        "id": NOPE,
        "organizationId": NOPE,
        "createdBy": {"id": "me"},
        "createdAt": "1999-01-01T00:00:00Z",
    }
    r = await client.post(
        f"/v1/organizations/{org.id}/deployments", json=request | extra, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert_astro(body, "Deployment")
    assert body["id"] != NOPE and body["organizationId"] == org.id
    assert (
        body["createdAt"] != "1999-01-01T00:00:00Z" and body["createdBy"]["subjectType"] == "USER"
    )
    expected = copy.deepcopy(request)
    del expected["environmentVariables"][1]["value"]  # secret values are never kept
    for var in expected["environmentVariables"]:
        var["updatedAt"] = body["updatedAt"]
    expected["workerQueues"][0] |= {"id": "", "podCpu": "", "podMemory": ""}
    expected["runtimeVersion"] = "9.1.0"  # the deprecated alias of astroRuntimeVersion
    for key, value in expected.items():
        assert body[key] == value, key
    for key in ("terraformManaged", "x-labels", "namespace", "status", "webServerUrl"):
        assert body[key] == extra[key], key
    assert body["airflowVersion"] == "" and body["imageRepository"] == ""
    row = await _dep_row(world, body["id"])
    assert row is not None and "hunter2" not in str(row.spec)
    got = await client.get(
        f"/v1/organizations/{org.id}/deployments/{row.id}", headers=bearer(token)
    )
    assert got.json() == body


async def test_hybrid_request_is_echoed(client: httpx.AsyncClient, world: World) -> None:
    org, ws1, _, _, token = await _setup(world)
    request: dict[str, Any] = {
        "name": "hybrid",
        "workspaceId": ws1.id,
        "type": "HYBRID",
        "astroRuntimeVersion": "9.1.0",
        "clusterId": "clmh597sg000208lb2kjhcn8q",
        "executor": "KUBERNETES",
        "isCicdEnforced": False,
        "isDagDeployEnabled": True,
        "scheduler": {"au": 5, "replicas": 2},
        "taskPodNodePoolId": "clmh5mash000008mia6lnbs0f",
        "workerQueues": [
            {
                "id": "cq1",
                "name": "default",
                "isDefault": True,
                "nodePoolId": "np1",
                "minWorkerCount": 1,
                "maxWorkerCount": 2,
                "workerConcurrency": 16,
            }
        ],
    }
    assert_astro(request, "CreateHybridDeploymentRequest")
    r = await client.post(
        f"/v1/organizations/{org.id}/deployments", json=request, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert_astro(body, "Deployment")
    assert (body["schedulerAu"], body["schedulerReplicas"]) == (5, 2)
    assert body["scheduler"] == {"au": 5, "replicas": 2}
    assert body["workerQueues"] == [request["workerQueues"][0] | {"podCpu": "", "podMemory": ""}]
    assert body["taskPodNodePoolId"] == request["taskPodNodePoolId"]
    assert body["clusterId"] == request["clusterId"] and body["executor"] == "KUBERNETES"


async def test_cicd_enforcement_defaults_to_the_workspace(
    client: httpx.AsyncClient, world: World
) -> None:
    org, _, _, _, token = await _setup(world)
    r = await client.post(
        f"/v1/organizations/{org.id}/workspaces",
        json={"name": "strict", "cicdEnforcedDefault": True},
        headers=bearer(token),
    )
    ws_id = r.json()["id"]
    url = f"/v1/organizations/{org.id}/deployments"
    r = await client.post(url, json={"name": "a", "workspaceId": ws_id}, headers=bearer(token))
    assert r.status_code == 200 and r.json()["isCicdEnforced"] is True
    r = await client.post(
        url,
        json={"name": "b", "workspaceId": ws_id, "isCicdEnforced": False},
        headers=bearer(token),
    )
    assert r.status_code == 200 and r.json()["isCicdEnforced"] is False


async def test_update_merges_replaces_and_removes(client: httpx.AsyncClient, world: World) -> None:
    org, ws1, _, _, token = await _setup(world)
    editor = await world.user(full_name="Ed")
    await world.roles(org, editor, workspaces=[(ws1.id, "WORKSPACE_OPERATOR")])
    r = await client.post(
        f"/v1/organizations/{org.id}/deployments",
        json=standard(ws1.id) | {"custom": "x"},
        headers=bearer(token),
    )
    created = r.json()
    url = f"/platform/v1beta1/organizations/{org.id}/deployments/{created['id']}"
    change = {
        "name": "renamed",
        "workspaceId": ws1.id,
        "executor": "KUBERNETES",
        "environmentVariables": [{"key": "ONLY", "value": "1", "isSecret": False}],
        "custom": None,  # null removes a field
        "region": None,
        "scalingSpec": {
            "hibernationSpec": {"override": {"overrideUntil": "2030-01-01T02:00:00+02:00"}}
        },
        "another": [1],
    }
    r = await client.post(url, json=change, headers=bearer(await world.token(editor)))
    assert r.status_code == 200, r.text
    body = r.json()
    assert_astro(body, "Deployment")
    assert body["name"] == "renamed" and body["executor"] == "KUBERNETES"
    assert body["environmentVariables"] == [
        {"key": "ONLY", "value": "1", "isSecret": False, "updatedAt": body["updatedAt"]}
    ]
    assert "custom" not in body and "region" not in body and body["another"] == [1]
    assert body["scalingSpec"] == {
        "hibernationSpec": {"override": {"overrideUntil": "2030-01-01T00:00:00Z"}}
    }
    # untouched fields keep their values
    for key in ("description", "astroRuntimeVersion", "workerQueues", "schedulerSize"):
        assert body[key] == created[key], key
    assert body["updatedBy"] == _profile(editor) and body["createdBy"] == created["createdBy"]
    assert body["createdAt"] == created["createdAt"]
    got = await client.get(url, headers=bearer(token))
    assert got.json() == body
    assert await _count(world, AuditEvent, AuditEvent.action == "deployment.update") == 1


async def test_create_rejects_bad_bodies_and_changes_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    org, ws1, _, _, token = await _setup(world)
    other = await world.org("Other")
    foreign = await world.workspace(other, "foreign")
    ok = {"name": "d", "workspaceId": ws1.id}
    queue = standard(ws1.id)["workerQueues"][0]
    bad_bodies: list[Any] = [
        {},
        {"name": "d"},
        {"workspaceId": ws1.id},
        {"name": "", "workspaceId": ws1.id},
        {"name": "   ", "workspaceId": ws1.id},
        {"name": "x" * 501, "workspaceId": ws1.id},
        {"name": 5, "workspaceId": ws1.id},
        {"name": "d", "workspaceId": "NOT-AN-ID"},
        {"name": "d", "workspaceId": NOPE},
        {"name": "d", "workspaceId": foreign.id},
        ok | {"description": "x" * 1001},
        ok | {"executor": "SPARK"},
        ok | {"type": "SERVERLESS"},
        ok | {"isCicdEnforced": "yes"},
        ok | {"isHighAvailability": 1},
        ok | {"contactEmails": "ops@acme.io"},
        ok | {"schedulerReplicas": "1"},
        ok | {"status": "GREAT"},
        ok | {"namespace": 7},
        ok | {"workerQueues": []},
        ok | {"workerQueues": [{k: v for k, v in queue.items() if k != "name"}]},
        ok | {"workerQueues": [queue | {"maxWorkerCount": 0}]},
        ok | {"workerQueues": [queue | {"minWorkerCount": 11}]},
        ok | {"workerQueues": [queue | {"astroMachine": "A1000"}]},
        ok | {"scheduler": {"au": 30, "replicas": 1}},
        ok | {"environmentVariables": [{"key": "A", "value": "b"}]},
        ok | {"scalingSpec": {"hibernationSpec": {"override": {"overrideUntil": "tomorrow"}}}},
        ok | {"scalingSpec": {"hibernationSpec": {"schedules": [{"isEnabled": True}]}}},
        [ok],
    ]
    url = f"/v1/organizations/{org.id}/deployments"
    for bad in bad_bodies:
        body = _assert_error(await client.post(url, json=bad, headers=bearer(token)), 400)
        assert body["message"], bad
    for raw, ctype in (("{not json", "application/json"), ("name=d", "text/plain")):
        r = await client.post(url, content=raw, headers=bearer(token) | {"content-type": ctype})
        _assert_error(r, 400)
    assert await _count(world, Deployment) == 0
    assert await _count(world, AuditEvent, AuditEvent.action == "deployment.create") == 0


async def test_values_no_database_can_keep_are_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    """NUL (which PostgreSQL refuses), non-finite or oversized numbers and deep nesting are a
    400 on both databases, never a server error."""
    org, ws1, _, _, token = await _setup(world)
    ok = {"name": "d", "workspaceId": ws1.id}
    deep: Any = "leaf"
    for _ in range(40):
        deep = {"n": deep}
    url = f"/v1/organizations/{org.id}/deployments"
    for bad in (
        ok | {"name": "a\x00b"},
        ok | {"description": "\x00"},
        ok | {"namespace": "ns\x00"},
        ok | {"custom": ["fine", {"inner": "x\x00"}]},
        ok | {"key\x00": 1},
        ok | {"big": 10**30},
        ok | {"deep": deep},
    ):
        _assert_error(await client.post(url, json=bad, headers=bearer(token)), 400)
    raw = f'{{"name": "d", "workspaceId": "{ws1.id}", "x": NaN}}'
    r = await client.post(
        url, content=raw, headers=bearer(token) | {"content-type": "application/json"}
    )
    _assert_error(r, 400)
    r = await client.get(f"{url}?names=a%00b", headers=bearer(token))
    assert _assert_error(r, 400)["fieldErrors"][0]["field"] == "names"
    assert await _count(world, Deployment) == 0
    shallow = ok | {"deep": {"a": {"b": [1, 2.5, -(2**63), True, None]}}}
    r = await client.post(url, json=shallow, headers=bearer(token))
    assert r.status_code == 200 and r.json()["deep"] == shallow["deep"]


async def test_create_is_refused_without_permission(
    client: httpx.AsyncClient, world: World
) -> None:
    org, ws1, ws2, _, _ = await _setup(world)
    other = await world.org("Other")
    author = await world.user()
    await world.roles(
        org, author, workspaces=[(ws1.id, "WORKSPACE_AUTHOR"), (ws2.id, "WORKSPACE_OPERATOR")]
    )
    token = await world.token(author)
    _, outsider_token = await world.member(other, "ORGANIZATION_OWNER")
    url = f"/v1/organizations/{org.id}/deployments"
    r = await client.post(url, json={"name": "d", "workspaceId": ws1.id}, headers=bearer(token))
    assert _assert_error(r, 403)["message"] == "missing permission workspace.deployments.create"
    r = await client.post(
        url, json={"name": "d", "workspaceId": ws1.id}, headers=bearer(outsider_token)
    )
    _assert_error(r, 403)  # Astro documents no 404 for CreateDeployment
    assert await _count(world, Deployment) == 0
    r = await client.post(url, json={"name": "d", "workspaceId": ws2.id}, headers=bearer(token))
    assert r.status_code == 200 and r.json()["workspaceId"] == ws2.id


async def test_list_shows_what_the_caller_may_see(client: httpx.AsyncClient, world: World) -> None:
    org, ws1, ws2, _, owner_token = await _setup(world)
    d1 = await world.deployment(ws1, "d1")
    d2 = await world.deployment(ws1, "d2")
    d3 = await world.deployment(ws2, "d3")
    other = await world.org("Other")
    foreign = await world.deployment(await world.workspace(other, "f"), "foreign")
    ws_member = await world.user()
    await world.roles(org, ws_member, workspaces=[(ws1.id, "WORKSPACE_MEMBER")])
    dep_admin = await world.user()
    await world.roles(org, dep_admin, deployments=[(d3.id, "DEPLOYMENT_ADMIN")])
    accessor = await world.user()
    await world.roles(org, accessor, workspaces=[(ws1.id, "WORKSPACE_ACCESSOR")])

    async def listed(token: str, query: str = "sorts=name:asc") -> list[str]:
        r = await client.get(
            f"/v1/organizations/{org.id}/deployments?{query}", headers=bearer(token)
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert_astro(body, "DeploymentsPaginated")
        assert body["totalCount"] == len(body["deployments"])
        return [d["name"] for d in body["deployments"]]

    assert await listed(owner_token) == ["d1", "d2", "d3"]
    assert await listed(await world.token(ws_member)) == ["d1", "d2"]
    assert await listed(await world.token(dep_admin)) == ["d3"]
    assert await listed(await world.token(accessor)) == []
    assert await listed(owner_token, f"deploymentIds={foreign.id}") == []
    assert await listed(owner_token, f"workspaceIds={ws2.id}") == ["d3"]
    assert await listed(await world.token(ws_member), f"workspaceIds={ws2.id}") == []
    assert await listed(owner_token, f"deploymentIds={d1.id}&deploymentIds={d3.id}") == ["d1", "d3"]
    assert await listed(owner_token, "names=d2&names=d3&sorts=name:desc") == ["d3", "d2"]
    assert await listed(owner_token, "sorts=createdAt:desc") == ["d3", "d2", "d1"]
    r = await client.get(
        f"/v1/organizations/{org.id}/deployments?sorts=name:asc&limit=2&offset=1",
        headers=bearer(owner_token),
    )
    page = r.json()
    assert [d["id"] for d in page["deployments"]] == [d2.id, d3.id]
    assert (page["limit"], page["offset"], page["totalCount"]) == (2, 1, 3)
    assert [d["workspaceName"] for d in page["deployments"]] == ["one", "two"]


async def test_list_rejects_bad_parameters(client: httpx.AsyncClient, world: World) -> None:
    org, *_, token = await _setup(world)
    for query in (
        "limit=1001",
        "limit=-1",
        "offset=-1",
        "sorts=id:asc",
        "sorts=name:",
        "deploymentIds=nope",
        "workspaceIds=NOT-AN-ID",
        "names=",
    ):
        r = await client.get(
            f"/v1/organizations/{org.id}/deployments?{query}", headers=bearer(token)
        )
        assert _assert_error(r, 400)["fieldErrors"], query
    # An organization the caller cannot reach: 403, as Astro documents no 404 for this list.
    other = await world.org("Other")
    _assert_error(
        await client.get(f"/v1/organizations/{other.id}/deployments", headers=bearer(token)), 403
    )


async def test_get_permissions_and_isolation(client: httpx.AsyncClient, world: World) -> None:
    org, ws1, ws2, _, _ = await _setup(world)
    d1, d2 = await world.deployment(ws1, "d1"), await world.deployment(ws2, "d2")
    other = await world.org("Other")
    foreign = await world.deployment(await world.workspace(other, "f"), "foreign")
    user = await world.user()
    await world.roles(org, user, workspaces=[(ws1.id, "WORKSPACE_MEMBER")])
    token = await world.token(user)
    base = f"/v1/organizations/{org.id}/deployments"
    r = await client.get(f"{base}/{d1.id}", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert_astro(r.json(), "Deployment")
    assert r.json()["createdBy"] == {"id": ""}  # made by the system principal
    r = await client.get(f"{base}/{d2.id}", headers=bearer(token))
    assert _assert_error(r, 403)["message"] == "missing permission deployment.get"
    _assert_error(await client.get(f"{base}/{foreign.id}", headers=bearer(token)), 404)
    _assert_error(
        await client.get(
            f"/v1/organizations/{other.id}/deployments/{foreign.id}", headers=bearer(token)
        ),
        404,
    )
    _assert_error(await client.get(f"{base}/{NOPE}", headers=bearer(token)), 404)
    _assert_error(await client.get(f"{base}/NOT-AN-ID", headers=bearer(token)), 400)


async def test_update_rejects_and_refuses_without_changing_anything(
    client: httpx.AsyncClient, world: World
) -> None:
    org, ws1, ws2, _, owner_token = await _setup(world)
    dep = await world.deployment(ws1, "d1", executor="CELERY")
    other = await world.org("Other")
    foreign = await world.deployment(await world.workspace(other, "f"), "foreign")
    member = await world.user()
    await world.roles(org, member, workspaces=[(ws1.id, "WORKSPACE_AUTHOR")])
    url = f"/v1/organizations/{org.id}/deployments/{dep.id}"
    bad: dict[str, Any] | str
    for bad in (
        {"workspaceId": ws2.id},  # a deployment never moves
        {"executor": "SPARK"},
        {"name": ""},
        {"workerQueues": []},
        "d1",
    ):
        _assert_error(await client.post(url, json=bad, headers=bearer(owner_token)), 400)
    r = await client.post(url, json={"name": "x"}, headers=bearer(await world.token(member)))
    assert _assert_error(r, 403)["message"] == "missing permission deployment.update"
    r = await client.post(
        f"/v1/organizations/{org.id}/deployments/{foreign.id}",
        json={"name": "x"},
        headers=bearer(owner_token),
    )
    _assert_error(r, 404)
    for d, name in ((dep, "d1"), (foreign, "foreign")):
        row = await _dep_row(world, d.id)
        assert row is not None and row.name == name
    row = await _dep_row(world, dep.id)
    assert row is not None and row.workspace_id == ws1.id
    assert row.spec == {"executor": "CELERY", "isCicdEnforced": False}
    assert await _count(world, AuditEvent, AuditEvent.action == "deployment.update") == 0


async def test_kept_fields_are_bounded(client: httpx.AsyncClient, world: World) -> None:
    org, ws1, _, _, token = await _setup(world)
    r = await client.post(
        f"/v1/organizations/{org.id}/deployments",
        json={"name": "d", "workspaceId": ws1.id, "a": "x" * 40_000},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    url = f"/v1/organizations/{org.id}/deployments/{r.json()['id']}"
    body = _assert_error(
        await client.post(url, json={"b": "y" * 40_000}, headers=bearer(token)), 400
    )
    assert body["fieldErrors"][0]["code"] == "too_large"
    row = await _dep_row(world, r.json()["id"])
    assert row is not None and "b" not in row.spec and len(row.spec["a"]) == 40_000


async def test_delete_deployment(client: httpx.AsyncClient, world: World) -> None:
    org, ws1, ws2, _, _ = await _setup(world)
    dep, kept = await world.deployment(ws1, "d1"), await world.deployment(ws1, "d2")
    other = await world.org("Other")
    foreign = await world.deployment(await world.workspace(other, "f"), "foreign")
    operator = await world.user()
    await world.roles(
        org,
        operator,
        workspaces=[(ws1.id, "WORKSPACE_OPERATOR"), (ws2.id, "WORKSPACE_MEMBER")],
        deployments=[(dep.id, "DEPLOYMENT_ADMIN"), (kept.id, "DEPLOYMENT_ADMIN")],
    )
    member = await world.user()
    await world.roles(org, member, workspaces=[(ws1.id, "WORKSPACE_MEMBER")])
    token = await world.token(operator)
    base = f"/platform/v1beta1/organizations/{org.id}/deployments"
    r = await client.delete(f"{base}/{dep.id}", headers=bearer(await world.token(member)))
    assert _assert_error(r, 403)["message"] == "missing permission deployment.delete"
    _assert_error(await client.delete(f"{base}/{foreign.id}", headers=bearer(token)), 404)
    assert await _dep_row(world, dep.id) is not None
    assert await _dep_row(world, foreign.id) is not None
    r = await client.delete(f"{base}/{dep.id}", headers=bearer(token))
    assert r.status_code == 204 and r.content == b""
    _assert_error(await client.get(f"{base}/{dep.id}", headers=bearer(token)), 404)
    _assert_error(await client.delete(f"{base}/{dep.id}", headers=bearer(token)), 404)
    assert await _count(world, RoleBinding, RoleBinding.deployment_id == dep.id) == 0
    assert await _count(world, RoleBinding, RoleBinding.deployment_id == kept.id) == 1
    assert await _dep_row(world, kept.id) is not None
    assert await _count(world, AuditEvent, AuditEvent.action == "deployment.delete") == 1


async def test_endpoints_require_a_token(client: httpx.AsyncClient, world: World) -> None:
    org, ws1, _, _, _ = await _setup(world)
    dep = await world.deployment(ws1, "d1")
    base = f"/v1/organizations/{org.id}/deployments"
    for method, url, body in (
        ("GET", base, None),
        ("POST", base, {"name": "x", "workspaceId": ws1.id}),
        ("GET", f"{base}/{dep.id}", None),
        ("POST", f"{base}/{dep.id}", {"name": "x"}),
        ("DELETE", f"{base}/{dep.id}", None),
    ):
        _assert_error(await client.request(method, url, json=body), 401)
    assert await _count(world, Deployment) == 1
    row = await _dep_row(world, dep.id)
    assert row is not None and row.name == "d1"


def test_every_deployment_field_a_client_may_send_is_type_checked() -> None:
    """What is echoed must match the Deployment schema, so every one of its fields is either
    owned by Tenantry or declared (and so validated) in the request model."""
    response_fields = set(astro_components()["Deployment"]["properties"])
    unchecked = response_fields - set(DeploymentBody.model_fields) - SERVER_OWNED
    assert unchecked == set()
    for name in ("CreateStandardDeploymentRequest", "CreateHybridDeploymentRequest"):
        request_fields = set(astro_components()[name]["properties"])
        assert request_fields <= set(DeploymentBody.model_fields), name
