"""Astro API tokens: CRUD, roles, rotation, the secret shown only once, using a token within its
roles, the ceiling (never more than its creator, nor than whoever grants its roles), expiry,
validation that writes nothing, and tenant isolation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update

from tenantry.clock import utcnow
from tenantry.db.models import AuditEvent, RoleBinding, Token
from tenantry.identity import tokens
from tenantry.identity.usage import recorder
from tests.factories import World, bearer
from tests.spec import assert_astro

PREFIXES = ("/v1", "/iam/v1beta1", "/platform/v1beta1")


def _url(org_id: str, *rest: str) -> str:
    return "/".join([f"/v1/organizations/{org_id}/tokens", *rest])


async def _state(world: World) -> tuple[int, int, int, list[str]]:
    """API tokens (with their digests), token role bindings and audit events: what a refused
    request must leave as it was."""
    async with world.database.transaction() as db:
        count = await db.scalar(select(func.count()).select_from(Token).where(Token.kind == "api"))
        bindings = await db.scalar(
            select(func.count()).select_from(RoleBinding).where(RoleBinding.subject_type == "token")
        )
        # Authentication's own events (a token's first use) are not the request's doing.
        events = await db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action != "token.first_use", AuditEvent.action.not_like("auth.%"))
        )
        digests = list(
            await db.scalars(select(Token.digest).where(Token.kind == "api").order_by(Token.id))
        )
    return count or 0, bindings or 0, events or 0, digests


async def _actions(world: World) -> list[str]:
    async with world.database.transaction() as db:
        return list(await db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def _is_error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert_astro(body, "Error")
    assert body["statusCode"] == status
    return body


async def test_create_get_list_update_and_delete(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    ws1, ws2 = await world.workspace(org, "one"), await world.workspace(org, "two")
    dep1 = await world.deployment(ws1)
    owner, token = await world.member(org, "ORGANIZATION_OWNER", full_name="Olga")
    r = await client.post(
        _url(org.id),
        json={
            "name": "CI",
            "description": "deploys",
            "type": "ORGANIZATION",
            "role": "ORGANIZATION_MEMBER",
            "tokenExpiryPeriodInDays": 30,
        },
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    created = r.json()
    assert_astro(created, "ApiToken")
    secret = created["token"]
    assert secret.startswith("tnt_") and created["shortToken"] == secret[4:12]
    assert created["name"] == "CI" and created["description"] == "deploys"
    assert created["type"] == "ORGANIZATION" and created["expiryPeriodInDays"] == 30
    assert created["roles"] == [
        {"entityId": org.id, "entityType": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}
    ]
    assert created["createdBy"]["id"] == owner.id and created["createdBy"]["subjectType"] == "USER"
    assert created["startAt"] == created["createdAt"] and "endAt" in created
    assert "lastUsedAt" not in created
    ws_token = await client.post(
        _url(org.id),
        json={"name": "ws", "type": "WORKSPACE", "entityId": ws1.id, "role": "WORKSPACE_AUTHOR"},
        headers=bearer(token),
    )
    assert ws_token.status_code == 200, ws_token.text
    assert ws_token.json()["roles"] == [
        {"entityId": ws1.id, "entityType": "WORKSPACE", "role": "WORKSPACE_AUTHOR"}
    ]
    assert "endAt" not in ws_token.json() and "expiryPeriodInDays" not in ws_token.json()
    dep_token = await client.post(
        _url(org.id),
        json={"name": "dep", "type": "DEPLOYMENT", "entityId": dep1.id, "role": "DEPLOYMENT_ADMIN"},
        headers=bearer(token),
    )
    assert dep_token.status_code == 200, dep_token.text
    assert dep_token.json()["type"] == "DEPLOYMENT"
    # The secret is never shown again, under any prefix.
    for prefix in PREFIXES:
        got = await client.get(
            f"{prefix}/organizations/{org.id}/tokens/{created['id']}", headers=bearer(token)
        )
        assert got.status_code == 200, got.text
        assert_astro(got.json(), "ApiToken")
        assert got.json() == {k: v for k, v in created.items() if k != "token"}
        assert secret not in got.text
    listed = await client.get(_url(org.id), params={"sorts": "name:asc"}, headers=bearer(token))
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert_astro(page, "ApiTokensPaginated")
    assert [t["name"] for t in page["tokens"]] == ["CI", "dep", "ws"]
    assert page["totalCount"] == 3 and page["limit"] == 20 and page["offset"] == 0
    assert all("token" not in t for t in page["tokens"]) and secret not in listed.text
    assert ws_token.json()["token"] not in listed.text

    async def names(**params: Any) -> tuple[list[str], int]:
        r = await client.get(_url(org.id), params=params, headers=bearer(token))
        assert r.status_code == 200, r.text
        assert_astro(r.json(), "ApiTokensPaginated")
        return [t["name"] for t in r.json()["tokens"]], r.json()["totalCount"]

    assert await names(includeOnlyOrganizationTokens="true") == (["CI"], 1)
    assert await names(workspaceId=ws1.id, sorts="name:asc") == (["dep", "ws"], 2)
    assert await names(deploymentId=dep1.id) == (["dep"], 1)
    assert await names(workspaceId=ws2.id) == ([], 0)
    assert await names(sorts=["name:desc"], limit=1, offset=1) == (["dep"], 3)
    assert await names(limit=0) == ([], 3)
    # Rename; a missing description keeps the current one.
    r = await client.post(_url(org.id, created["id"]), json={"name": "CI 2"}, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert_astro(r.json(), "ApiToken")
    assert r.json()["name"] == "CI 2" and r.json()["description"] == "deploys"
    assert "token" not in r.json()
    r = await client.post(
        _url(org.id, created["id"]),
        json={"name": "CI 3", "description": ""},
        headers=bearer(token),
    )
    assert r.json()["name"] == "CI 3" and r.json()["description"] == ""
    # The token works until it is deleted, then never again.
    assert (
        await client.get(f"/v1/organizations/{org.id}/users", headers=bearer(secret))
    ).is_success
    r = await client.delete(_url(org.id, created["id"]), headers=bearer(token))
    assert r.status_code == 204 and r.content == b""
    _is_error(await client.get(f"/v1/organizations/{org.id}/users", headers=bearer(secret)), 401)
    _is_error(await client.get(_url(org.id, created["id"]), headers=bearer(token)), 404)
    _is_error(await client.delete(_url(org.id, created["id"]), headers=bearer(token)), 404)
    assert await names(sorts="name:asc") == (["dep", "ws"], 2)
    async with world.database.transaction() as db:
        left = await db.scalar(
            select(func.count())
            .select_from(RoleBinding)
            .where(RoleBinding.subject_type == "token", RoleBinding.subject_id == created["id"])
        )
    assert left == 0
    actions = await _actions(world)
    assert actions.count("organization.token.create") == 3
    assert actions.count("organization.token.update") == 2
    assert "organization.token.delete" in actions


async def test_rotate_replaces_the_secret_at_once(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    made = await world.api_token(org, days=10)
    users = f"/v1/organizations/{org.id}/users"
    assert (await client.get(users, headers=bearer(made.secret))).status_code == 200
    await recorder(world.database).flush()  # the reading request only queued its use
    before = (await client.get(_url(org.id, made.id), headers=bearer(token))).json()
    assert "lastUsedAt" in before  # the request above used it
    r = await client.post(_url(org.id, made.id, "rotate"), headers=bearer(token))
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert_astro(rotated, "ApiToken")
    new_secret = rotated["token"]
    assert new_secret.startswith("tnt_") and new_secret != made.secret
    assert rotated["id"] == made.id and rotated["shortToken"] == new_secret[4:12]
    assert rotated["shortToken"] != before["shortToken"]
    assert rotated["roles"] == before["roles"] and rotated["endAt"] == before["endAt"]
    _is_error(await client.get(users, headers=bearer(made.secret)), 401)
    assert (await client.get(users, headers=bearer(new_secret))).status_code == 200
    got = await client.get(_url(org.id, made.id), headers=bearer(token))
    assert "token" not in got.json() and new_secret not in got.text
    async with world.database.transaction() as db:
        rows = list(await db.scalars(select(Token).where(Token.kind == "api")))
        event = await db.scalar(
            select(AuditEvent).where(AuditEvent.action == "organization.token.rotate")
        )
    assert len(rows) == 1 and rows[0].digest == tokens.digest(new_secret)
    assert event is not None and event.target_id == made.id
    assert made.secret not in str(event.details) and new_secret not in str(event.details)


async def test_a_token_acts_within_its_roles(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    owner, _ = await world.member(org, "ORGANIZATION_OWNER")
    member, _ = await world.member(org)
    made = await world.api_token(org, owner, "ORGANIZATION_MEMBER")
    auth = bearer(made.secret)
    r = await client.get(f"/v1/organizations/{org.id}/users", headers=auth)
    assert r.status_code == 200 and r.json()["totalCount"] == 2
    assert (await client.get(f"/v1/organizations/{org.id}/teams", headers=auth)).is_success
    r = await client.post(
        f"/v1/organizations/{org.id}/users/{member.id}/roles",
        json={"organizationRole": "ORGANIZATION_OWNER"},
        headers=auth,
    )
    _is_error(r, 403)
    _is_error(await client.get(_url(org.id), headers=auth), 403)
    _is_error(await client.get("/v1/users/self", headers=auth), 403)
    # An owner's token does what an owner does.
    strong = await world.api_token(org, owner, "ORGANIZATION_OWNER")
    r = await client.post(
        f"/v1/organizations/{org.id}/users/{member.id}/roles",
        json={"organizationRole": "ORGANIZATION_BILLING_ADMIN"},
        headers=bearer(strong.secret),
    )
    assert r.status_code == 200, r.text
    # Another organization is out of reach for either token (ListUsers documents no 404:
    # its 403, the same as for a made-up organization).
    other = await world.org("Other")
    for secret in (made.secret, strong.secret):
        _is_error(
            await client.get(f"/v1/organizations/{other.id}/users", headers=bearer(secret)), 403
        )


async def test_replace_roles(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    ws1, ws2 = await world.workspace(org, "one"), await world.workspace(org, "two")
    dep2 = await world.deployment(ws2)
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    made = await world.api_token(org)
    roles = [
        {"entityId": org.id, "entityType": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"},
        {"entityId": ws1.id, "entityType": "WORKSPACE", "role": "WORKSPACE_OWNER"},
        {"entityId": dep2.id, "entityType": "DEPLOYMENT", "role": "DEPLOYMENT_ADMIN"},
    ]
    r = await client.post(
        _url(org.id, made.id, "roles"), json={"roles": roles}, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    assert_astro(r.json(), "SubjectRoles")
    assert r.json()["organizationRole"] == "ORGANIZATION_MEMBER"
    assert r.json()["workspaceRoles"] == [{"role": "WORKSPACE_OWNER", "workspaceId": ws1.id}]
    assert r.json()["deploymentRoles"] == [{"deploymentId": dep2.id, "role": "DEPLOYMENT_ADMIN"}]
    got = (await client.get(_url(org.id, made.id), headers=bearer(token))).json()
    assert got["roles"] == roles
    assert "organization.token.roles.replace" in await _actions(world)
    # The token now manages ws1's tokens, and nothing more.
    auth = bearer(made.secret)
    r = await client.get(_url(org.id), params={"workspaceId": ws1.id}, headers=auth)
    assert r.status_code == 200, r.text
    assert [t["id"] for t in r.json()["tokens"]] == [made.id]
    _is_error(await client.get(_url(org.id), headers=auth), 403)
    _is_error(await client.get(_url(org.id), params={"workspaceId": ws2.id}, headers=auth), 403)
    ws_body = {"name": "child", "type": "WORKSPACE", "role": "WORKSPACE_OWNER"}
    r = await client.post(_url(org.id), json=ws_body | {"entityId": ws1.id}, headers=auth)
    assert r.status_code == 200, r.text
    child = r.json()
    assert child["createdBy"] == {
        "id": made.id,
        "subjectType": "SERVICEKEY",
        "apiTokenName": made.token.name,
    }
    async with world.database.transaction() as db:
        row = await db.get(Token, child["id"])
    assert row is not None and row.user_id == made.token.user_id  # capped by the human
    before = await _state(world)
    _is_error(
        await client.post(_url(org.id), json=ws_body | {"entityId": ws2.id}, headers=auth), 403
    )
    org_body = {"name": "x", "type": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}
    _is_error(await client.post(_url(org.id), json=org_body, headers=auth), 403)
    # It cannot raise its own roles.
    raise_self = [roles[0] | {"role": "ORGANIZATION_OWNER"}]
    r = await client.post(_url(org.id, made.id, "roles"), json={"roles": raise_self}, headers=auth)
    _is_error(r, 403)
    assert await _state(world) == before
    assert (await client.get(_url(org.id, made.id), headers=bearer(token))).json()["roles"] == roles


async def test_invalid_roles_write_nothing(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    ws1, ws2 = await world.workspace(org, "one"), await world.workspace(org, "two")
    dep2 = await world.deployment(ws2)
    other = await world.org("Other")
    other_ws = await world.workspace(other)
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    org_token = await world.api_token(org)
    ws_token = await world.api_token(org, None, "WORKSPACE_MEMBER", "WORKSPACE", ws1.id)
    member = {"entityId": org.id, "entityType": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}
    cases: list[tuple[str, Any, str | None]] = [
        (org_token.id, {"roles": []}, None),
        (org_token.id, {}, None),
        (org_token.id, {"roles": [member | {"entityType": "GALAXY"}]}, None),
        (org_token.id, {"roles": [member | {"entityId": "not-an-id"}]}, None),
        (org_token.id, {"roles": [member | {"role": "ORGANIZATION_EMPEROR"}]}, "roles[0].role"),
        (org_token.id, {"roles": [member | {"entityId": other.id}]}, "roles[0].entityId"),
        (org_token.id, {"roles": [member, member]}, "roles"),
        (  # an organization token needs its organization role
            org_token.id,
            {"roles": [{"entityId": ws1.id, "entityType": "WORKSPACE", "role": "WORKSPACE_OWNER"}]},
            "roles",
        ),
        (
            org_token.id,
            {
                "roles": [
                    member,
                    {"entityId": other_ws.id, "entityType": "WORKSPACE", "role": "WORKSPACE_OWNER"},
                ]
            },
            "roles[1].entityId",
        ),
        (
            org_token.id,
            {
                "roles": [
                    member,
                    {"entityId": ws1.id, "entityType": "WORKSPACE", "role": "DEPLOYMENT_ADMIN"},
                ]
            },
            "roles[1].role",
        ),
        (ws_token.id, {"roles": [member]}, "roles[0].entityType"),
        (
            ws_token.id,
            {"roles": [{"entityId": ws2.id, "entityType": "WORKSPACE", "role": "WORKSPACE_OWNER"}]},
            "roles[0].entityId",
        ),
        (
            ws_token.id,
            {
                "roles": [
                    {"entityId": ws1.id, "entityType": "WORKSPACE", "role": "WORKSPACE_OWNER"},
                    {"entityId": dep2.id, "entityType": "DEPLOYMENT", "role": "DEPLOYMENT_ADMIN"},
                ]
            },
            "roles[1].entityId",
        ),
    ]
    before = await _state(world)
    for token_id, body, field in cases:
        r = await client.post(_url(org.id, token_id, "roles"), json=body, headers=bearer(token))
        error = _is_error(r, 400)
        if field is not None:
            assert field in [f["field"] for f in error["fieldErrors"]], (body, error)
    assert await _state(world) == before


async def test_bad_input_is_400_and_writes_nothing(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    other_ws = await world.workspace(await world.org("Other"))
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    made = await world.api_token(org)
    good = {"name": "t", "type": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}
    cases: list[tuple[Any, str | None]] = [
        (good | {"type": "GALAXY"}, "type"),
        ({"name": "t", "role": "ORGANIZATION_MEMBER"}, "type"),
        (good | {"role": "ORGANIZATION_EMPEROR"}, "role"),
        (good | {"role": "WORKSPACE_OWNER"}, "role"),
        (good | {"type": "WORKSPACE", "role": "WORKSPACE_OWNER"}, "entityId"),
        (
            good | {"type": "WORKSPACE", "role": "WORKSPACE_OWNER", "entityId": other_ws.id},
            "entityId",
        ),
        (good | {"type": "WORKSPACE", "role": "ORGANIZATION_MEMBER", "entityId": ws.id}, "role"),
        (good | {"type": "DEPLOYMENT", "role": "DEPLOYMENT_ADMIN", "entityId": ws.id}, "entityId"),
        (good | {"entityId": ws.id}, "entityId"),
        (good | {"tokenExpiryPeriodInDays": 0}, "tokenExpiryPeriodInDays"),
        (good | {"tokenExpiryPeriodInDays": -5}, "tokenExpiryPeriodInDays"),
        (good | {"tokenExpiryPeriodInDays": 3651}, "tokenExpiryPeriodInDays"),
        (good | {"tokenExpiryPeriodInDays": 10**30}, "tokenExpiryPeriodInDays"),
        (good | {"name": ""}, "name"),
        (good | {"name": "   "}, "name"),
        (good | {"name": "nul\x00"}, None),  # refused before or by the service
        (good | {"description": "x" * 501}, "description"),
        (good | {"description": "nul\x00"}, None),
    ]
    before = await _state(world)
    for body, field in cases:
        r = await client.post(_url(org.id), json=body, headers=bearer(token))
        error = _is_error(r, 400)
        if field is not None:
            assert field in [f["field"] for f in error.get("fieldErrors", [])], (body, error)
    lone_surrogate = b'{"name": "t", "type": "ORGANIZATION", "role": "ORGANIZATION_MEMBER", '
    for raw in (b"{not json", b"[]", b"", lone_surrogate + b'"description": "\\ud800"}'):
        r = await client.post(
            _url(org.id), content=raw, headers=bearer(token) | {"content-type": "application/json"}
        )
        _is_error(r, 400)
    for body in ({"name": ""}, {"description": "x"}, {"name": "x", "description": "y" * 501}):
        _is_error(await client.post(_url(org.id, made.id), json=body, headers=bearer(token)), 400)
    for params in (
        {"sorts": "secret:asc"},
        {"workspaceId": "nope"},
        {"limit": 1001},
        {"offset": -1},
    ):
        _is_error(await client.get(_url(org.id), params=params, headers=bearer(token)), 400)
    _is_error(await client.get(_url(org.id, "not-an-id"), headers=bearer(token)), 400)
    assert await _state(world) == before


async def test_a_token_never_exceeds_who_grants_it(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    ws1, ws2 = await world.workspace(org, "one"), await world.workspace(org, "two")
    dep1, dep2 = await world.deployment(ws1, "d1"), await world.deployment(ws2, "d2")
    maker = await world.custom_role(
        org,
        "TokenMaker",
        ["deployment.get", "deployment.tokens.create", "deployment.tokens.get"],
    )
    rotator = await world.custom_role(
        org, "TokenRotator", ["deployment.get", "deployment.tokens.get", "deployment.tokens.update"]
    )
    _, member_token = await world.member(org)
    ws_owner = await world.user()
    await world.roles(org, ws_owner, workspaces=[(ws1.id, "WORKSPACE_OWNER")])
    ws_owner_token = await world.token(ws_owner)
    dep_user = await world.user()
    await world.roles(org, dep_user, deployments=[(dep1.id, maker.name), (dep2.id, rotator.name)])
    dep_token = await world.token(dep_user)
    before = await _state(world)
    # An organization member may not create an owner's token (nor any organization token).
    body = {"name": "x", "type": "ORGANIZATION", "role": "ORGANIZATION_OWNER"}
    _is_error(await client.post(_url(org.id), json=body, headers=bearer(member_token)), 403)
    # A WORKSPACE_OWNER: tokens for their workspace, not for another one.
    ws_body = {"name": "w", "type": "WORKSPACE", "role": "WORKSPACE_OWNER"}
    r = await client.post(
        _url(org.id), json=ws_body | {"entityId": ws2.id}, headers=bearer(ws_owner_token)
    )
    _is_error(r, 403)
    # Holding deployment.tokens.create is not enough to give DEPLOYMENT_ADMIN.
    dep_body = {"name": "d", "type": "DEPLOYMENT", "entityId": dep1.id}
    r = await client.post(
        _url(org.id), json=dep_body | {"role": "DEPLOYMENT_ADMIN"}, headers=bearer(dep_token)
    )
    error = _is_error(r, 403)
    assert "DEPLOYMENT_ADMIN" in error["message"]
    r = await client.post(
        _url(org.id),
        json=dep_body | {"entityId": dep2.id, "role": rotator.name},
        headers=bearer(dep_token),
    )
    _is_error(r, 403)  # no deployment.tokens.create on dep2
    assert await _state(world) == before
    r = await client.post(
        _url(org.id), json=ws_body | {"entityId": ws1.id}, headers=bearer(ws_owner_token)
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        _url(org.id), json=dep_body | {"role": maker.name}, headers=bearer(dep_token)
    )
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == [
        {"entityId": dep1.id, "entityType": "DEPLOYMENT", "role": maker.name}
    ]
    # Rotating hands out a working secret: only for a token whose roles the caller holds.
    admin_dep2 = await world.api_token(org, None, "DEPLOYMENT_ADMIN", "DEPLOYMENT", dep2.id)
    own_dep2 = await world.api_token(org, None, rotator.name, "DEPLOYMENT", dep2.id)
    _is_error(
        await client.post(_url(org.id, admin_dep2.id, "rotate"), headers=bearer(dep_token)), 403
    )
    r = await client.post(_url(org.id, own_dep2.id, "rotate"), headers=bearer(dep_token))
    assert r.status_code == 200, r.text
    # Nor can it give a token it may update a role it does not hold itself.
    dep2_role = {"entityId": dep2.id, "entityType": "DEPLOYMENT"}
    roles_url = _url(org.id, own_dep2.id, "roles")
    before = await _state(world)
    r = await client.post(
        roles_url,
        json={"roles": [dep2_role | {"role": "DEPLOYMENT_ADMIN"}]},
        headers=bearer(dep_token),
    )
    _is_error(r, 403)
    assert await _state(world) == before
    r = await client.post(
        roles_url, json={"roles": [dep2_role | {"role": rotator.name}]}, headers=bearer(dep_token)
    )
    assert r.status_code == 200, r.text
    assert r.json()["deploymentRoles"] == [{"deploymentId": dep2.id, "role": rotator.name}]


async def test_a_token_loses_power_with_its_creator(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    owner, _ = await world.member(org, "ORGANIZATION_OWNER")
    creator = await world.user()
    await world.roles(org, creator, "ORGANIZATION_OWNER")
    made = await world.api_token(org, creator, "ORGANIZATION_OWNER")
    ws_made = await world.api_token(org, creator, "WORKSPACE_OWNER", "WORKSPACE", ws.id)
    auth, ws_auth = bearer(made.secret), bearer(ws_made.secret)
    assert (await client.get(_url(org.id), headers=auth)).status_code == 200
    in_ws = {"workspaceId": ws.id}
    assert (await client.get(_url(org.id), params=in_ws, headers=ws_auth)).status_code == 200
    await world.roles(org, creator, "ORGANIZATION_MEMBER")  # demoted by the owner
    _is_error(await client.get(_url(org.id), headers=auth), 403)
    _is_error(await client.get(_url(org.id), params=in_ws, headers=ws_auth), 403)
    # What the creator still holds, the token still does.
    assert (await client.get(f"/v1/organizations/{org.id}/users", headers=auth)).is_success
    # The organization's owner can still manage both tokens.
    owner_token = await world.token(owner)
    assert (await client.get(_url(org.id, made.id), headers=bearer(owner_token))).is_success


async def test_an_expired_token_is_refused(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    made = await world.api_token(org, days=1)
    users = f"/v1/organizations/{org.id}/users"
    assert (await client.get(users, headers=bearer(made.secret))).status_code == 200
    async with world.database.transaction() as db:
        await db.execute(
            update(Token)
            .where(Token.id == made.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    body = _is_error(await client.get(users, headers=bearer(made.secret)), 401)
    assert "expired" in body["message"]


async def test_isolation_and_permissions(client: httpx.AsyncClient, world: World) -> None:
    a, b = await world.org("A"), await world.org("B")
    ws_a = await world.workspace(a)
    _, owner_a = await world.member(a, "ORGANIZATION_OWNER")
    member_a, member_token = await world.member(a)
    await world.roles(a, member_a, workspaces=[(ws_a.id, "WORKSPACE_MEMBER")])
    token_a = await world.api_token(a)
    token_b = await world.api_token(b)
    loner = await world.token(await world.user())
    before = await _state(world)
    requests: list[tuple[str, str, Any]] = [
        ("GET", "", None),
        ("POST", "", {"name": "x", "type": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}),
        ("GET", "/{t}", None),
        ("POST", "/{t}", {"name": "x"}),
        ("DELETE", "/{t}", None),
        (
            "POST",
            "/{t}/roles",
            {
                "roles": [
                    {"entityId": "{o}", "entityType": "ORGANIZATION", "role": "ORGANIZATION_MEMBER"}
                ]
            },
        ),
        ("POST", "/{t}/rotate", None),
    ]

    async def call(method: str, org_id: str, path: str, body: Any, token_id: str, who: str) -> Any:
        url = f"/v1/organizations/{org_id}/tokens" + path.replace("{t}", token_id)
        if body is not None:
            body = {
                k: ([r | {"entityId": org_id} for r in v] if k == "roles" else v)
                for k, v in body.items()
            }
        return await client.request(method, url, json=body, headers=bearer(who))

    for method, path, body in requests:
        # B's organization, from A's owner and from a user in no organization.
        for who in (owner_a, loner):
            _is_error(await call(method, b.id, path, body, token_b.id, who), 404)
        # B's token through A's organization.
        if "{t}" in path:
            _is_error(await call(method, a.id, path, body, token_b.id, owner_a), 404)
            # A's member sees the organization but may not touch its tokens.
            _is_error(await call(method, a.id, path, body, token_a.id, member_token), 403)
    assert await _state(world) == before
    _is_error(await client.get(_url(a.id), headers=bearer(member_token)), 403)
    r = await client.get(_url(a.id), params={"workspaceId": ws_a.id}, headers=bearer(member_token))
    _is_error(r, 403)  # WORKSPACE_MEMBER holds no workspace.tokens.list
    # Filtering on B's workspace finds nothing of B's.
    ws_b = await world.workspace(b)
    await world.api_token(b, None, "WORKSPACE_OWNER", "WORKSPACE", ws_b.id)
    r = await client.get(_url(a.id), params={"workspaceId": ws_b.id}, headers=bearer(owner_a))
    assert r.status_code == 200 and r.json()["tokens"] == [] and r.json()["totalCount"] == 0
