"""What one role change sends to the database (issue 15: a role change stays fast under read
load, where every statement waits its turn): its statements, and its one notice to other
processes, sent with the user's lock and delivered only if the change commits."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tenantry.config import load_settings
from tenantry.db.engine import Database
from tenantry.db.generation import CHANNEL
from tenantry.errors import Invalid
from tests.faces.errors import astro_error
from tests.factories import World
from tests.test_caching import settled, statements

MISSING_ORG = "c" + "0" * 24  # well formed, and no organization's


async def test_a_role_change_sends_five_statements(database: Database, world: World) -> None:
    """Lock and stamp the user (with their membership), check the workspace and deployment
    at once, drop the old bindings, insert the new ones, insert the audit event; no flush
    of ORM objects, and on PostgreSQL no separate NOTIFY before the commit."""
    org = await world.org()
    ws = await world.workspace(org)
    dep = await world.deployment(ws)
    user, _ = await world.member(org)
    with statements(database) as seen:
        after = await world.roles(
            org,
            user,
            workspaces=[(ws.id, "WORKSPACE_MEMBER")],
            deployments=[(dep.id, "DEPLOYMENT_ADMIN")],
        )
    assert after.workspace_roles == [(ws.id, "WORKSPACE_MEMBER")]
    assert after.deployment_roles == [(dep.id, "DEPLOYMENT_ADMIN")]
    sent = [s.split()[0] for s in seen if not s.startswith("BEGIN")]
    assert sent == ["UPDATE", "SELECT", "DELETE", "INSERT", "INSERT"], seen
    assert "audit_events" in seen[-1]
    notifying = [s.split()[0] for s in seen if "pg_notify" in s]
    assert notifying == (["UPDATE"] if not database.settings.is_sqlite else [])


async def test_a_role_change_announces_its_user_once_and_only_if_it_commits(pg_url: str) -> None:
    database = Database(load_settings(database_url=pg_url))
    world = World(database)
    org = await world.org()
    ws = await world.workspace(org)
    user, _ = await world.member(org)
    heard: list[str] = []
    listener = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
    await listener.add_listener(CHANNEL, lambda *args: heard.append(args[-1]))
    try:
        with pytest.raises(Invalid):  # refused after the user's lock: rolled back
            await world.roles(org, user, workspaces=[("no-such-workspace", "WORKSPACE_MEMBER")])
        await world.roles(org, user, workspaces=[(ws.id, "WORKSPACE_MEMBER")])
        assert await settled(heard) == [f"scopes:user:{user.id}"]
    finally:
        await listener.close()
        await database.dispose()


async def test_a_missing_organization_is_404_before_a_viewers_refusal(
    client: httpx.AsyncClient, world: World
) -> None:
    """A system viewer sees every organization but may not change roles: for a made-up
    organization it hears "organization not found", for a real one 403, as before the role
    change learned to skip loading the organization."""
    org = await world.org()
    member, _ = await world.member(org)
    viewer = await world.user()
    await world.system_role(viewer, "SYSTEM_VIEWER")
    headers = {"Authorization": f"Bearer {await world.token(viewer)}"}
    body = {"organizationRole": "ORGANIZATION_OWNER"}
    missing = await client.post(
        f"/v1/organizations/{MISSING_ORG}/users/{member.id}/roles",
        json=body,
        headers=headers,
    )
    astro_error(missing, 404, part="organization not found")
    refused = await client.post(
        f"/v1/organizations/{org.id}/users/{member.id}/roles", json=body, headers=headers
    )
    astro_error(refused, 403)
