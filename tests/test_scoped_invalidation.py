"""Invalidation scoped to what changed (db/generation.py scopes, db/engine.py's row → scope
table): a change ends exactly the cached answers it can affect, and no others.

Each test warms several callers, makes one change through the domain's use case (the same one
every face calls), then proves two things: whoever the change concerns sees it on their very
next request, and everyone else is still answered from the cache (no SQL at all)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from tenantry.db.engine import Database
from tenantry.db.models import FeatureFlag, Organization
from tenantry.directory import api_tokens, custom_roles, teams
from tenantry.directory.members import RoleSet
from tenantry.identity.principals import system_principal
from tests.faces.errors import astro_error
from tests.factories import World
from tests.test_caching import SELF, UNLEASH_USER, statements, warm

Headers = dict[str, str]


def astro(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


def unleash(token: str) -> Headers:
    return {"Authorization": token}


async def still_cached(
    client: httpx.AsyncClient, database: Database, *callers: tuple[str, Headers]
) -> None:
    """Each caller's warm answer is served again without a single statement."""
    for path, headers in callers:
        with statements(database) as seen:
            r = await client.get(path, headers=headers)
        assert r.status_code == 200, r.text
        assert seen == [], f"{path} was reloaded: {seen[:2]}"


def project_permissions(body: dict[str, Any], workspace_id: str) -> set[str]:
    return {p["permission"] for p in body["permissions"] if p.get("project") == workspace_id}


async def test_a_members_role_change_ends_only_that_members_answers(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    org, elsewhere = await world.org("Mine"), await world.org("Elsewhere")
    ws = await world.workspace(org)
    changed, changed_token = await world.member(org)
    _, colleague = await world.member(org)
    _, stranger = await world.member(elsewhere)
    for token in (changed_token, colleague, stranger):
        await warm(client, SELF, astro(token))
    await world.roles(org, changed, workspaces=[(ws.id, "WORKSPACE_OWNER")])
    after = (await client.get(SELF, headers=astro(changed_token))).json()
    granted = {"role": "WORKSPACE_OWNER", "scope": {"entityId": ws.id, "type": "WORKSPACE"}}
    assert granted in after["roles"]
    await still_cached(client, database, (SELF, astro(colleague)), (SELF, astro(stranger)))


async def test_a_teams_role_change_reaches_every_member_and_nobody_else(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    inside, inside_token = await world.member(org)
    _, outside = await world.member(org)
    team = await world.team(org, members=[inside])  # no roles yet: still a scope of `inside`
    assert (
        project_permissions(await warm(client, UNLEASH_USER, unleash(inside_token)), ws.id) == set()
    )
    await warm(client, UNLEASH_USER, unleash(outside))
    async with world.database.transaction() as db:
        roles = RoleSet("ORGANIZATION_MEMBER", [(ws.id, "WORKSPACE_OWNER")], [], [])
        await teams.replace_team_roles(db, system_principal(), org.id, team.id, roles)
    body = (await client.get(UNLEASH_USER, headers=unleash(inside_token))).json()
    assert project_permissions(body, ws.id), body["permissions"]
    await still_cached(client, database, (UNLEASH_USER, unleash(outside)))


async def test_joining_a_team_hands_its_roles_at_once(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    joiner, joiner_token = await world.member(org)
    _, bystander = await world.member(org)
    team = await world.team(org, workspaces=[(ws.id, "WORKSPACE_OWNER")])
    await warm(client, UNLEASH_USER, unleash(joiner_token))
    await warm(client, UNLEASH_USER, unleash(bystander))
    async with world.database.transaction() as db:
        await teams.add_team_members(db, system_principal(), org.id, team.id, [joiner.id])
    body = (await client.get(UNLEASH_USER, headers=unleash(joiner_token))).json()
    assert project_permissions(body, ws.id)
    await still_cached(client, database, (UNLEASH_USER, unleash(bystander)))
    async with world.database.transaction() as db:  # deleting the team takes them away again
        await teams.delete_team(db, system_principal(), org.id, team.id)
    body = (await client.get(UNLEASH_USER, headers=unleash(joiner_token))).json()
    assert project_permissions(body, ws.id) == set()


async def test_a_custom_roles_new_permissions_reach_its_holders_only(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    dep = await world.deployment(ws)
    role = await world.custom_role(org, "Viewer", ["deployment.get"])
    holder, holder_token = await world.member(org)
    await world.roles(org, holder, deployments=[(dep.id, role.name)])
    _, other = await world.member(org)
    path = f"/v1/organizations/{org.id}/deployments/{dep.id}"
    assert (await client.get(path, headers=astro(holder_token))).status_code == 200
    await warm(client, SELF, astro(other))
    async with world.database.transaction() as db:
        fields = custom_roles.RoleFields("Viewer", ["deployment.envVars.get"])
        await custom_roles.update_role(db, system_principal(), org.id, role.id, fields)
    refused = await client.get(path, headers=astro(holder_token))
    assert refused.status_code == 403, refused.text
    assert refused.json()["message"] == "missing permission deployment.get"
    await still_cached(client, database, (SELF, astro(other)))


async def test_an_instance_flag_reaches_every_users_view(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    _, first = await world.member(org)
    _, second = await world.member(org)
    for token in (first, second):
        await warm(client, SELF, astro(token))
    async with world.database.transaction() as db:
        db.add(FeatureFlag(key="new-console", default_value=True))
    for token in (first, second):
        flags = (await client.get(SELF, headers=astro(token))).json()["featureFlags"]
        assert {"key": "new-console", "value": True} in flags


async def test_an_api_tokens_new_roles_apply_on_its_next_request(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    org = await world.org()
    minted = await world.api_token(org, role="ORGANIZATION_MEMBER")
    _, bystander = await world.member(org)
    path = f"/v1/organizations/{org.id}/tokens"
    refused = await client.get(path, headers=astro(minted.secret))
    assert refused.status_code == 403 and refused.json()["statusCode"] == 403
    astro_error(refused, 403, "missing permission organization.tokens.list")
    await client.get(path, headers=astro(minted.secret))  # its principal is cached now
    await warm(client, SELF, astro(bystander))
    async with world.database.transaction() as db:
        owner = [api_tokens.TokenRole("ORGANIZATION", org.id, "ORGANIZATION_OWNER")]
        await api_tokens.replace_api_token_roles(db, system_principal(), org.id, minted.id, owner)
    allowed = await client.get(path, headers=astro(minted.secret))
    assert allowed.status_code == 200, allowed.text
    assert minted.id in {t["id"] for t in allowed.json()["tokens"]}
    await still_cached(client, database, (SELF, astro(bystander)))


async def test_deleting_an_organization_ends_every_answer(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    """What the database cascades is unseen by the session: that change concerns anyone."""
    org, other = await world.org("Doomed"), await world.org("Other")
    _, doomed = await world.member(org)
    _, survivor = await world.member(other)
    await warm(client, SELF, astro(doomed))
    await warm(client, SELF, astro(survivor))
    async with world.database.transaction() as db:
        found = await db.scalar(select(Organization).where(Organization.id == org.id))
        await db.delete(found)
    body = (await client.get(SELF, headers=astro(doomed))).json()
    assert all(r["scope"].get("entityId") != org.id for r in body["roles"])
    with statements(database) as seen:
        assert (await client.get(SELF, headers=astro(survivor))).status_code == 200
    assert seen, "an unscoped change must reload everyone"
