"""`tenantry demo`: a small realistic directory that every face can show right away."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tenantry.cli import app as cli
from tenantry.clock import utcnow
from tenantry.db.engine import Database
from tenantry.db.models import FeatureFlag, Invite, Membership, RoleBinding, User, UserFeatureFlag
from tenantry.devdata.demo import DEFAULT_ADMIN, load_demo
from tenantry.errors import Conflict
from tests.factories import bearer


async def test_demo_covers_every_scope_and_the_admin_token_works(
    database: Database, client: httpx.AsyncClient
) -> None:
    async with database.transaction() as db:
        result = await load_demo(db)
    assert result.loaded and result.token and result.admin_username == DEFAULT_ADMIN
    assert len(result.organizations) == 2 and 45 <= result.users <= 60

    async with database.transaction(write=False) as db:
        org_roles = Counter(await db.scalars(select(Membership.role)))
        scope_types = Counter(await db.scalars(select(RoleBinding.scope_type)))
        dag_tags = await db.scalar(select(func.count()).where(RoleBinding.dag_tag.is_not(None)))
        invites = (await db.scalars(select(Invite))).all()
        flags = await db.scalar(select(func.count()).select_from(FeatureFlag))
        overrides = await db.scalar(select(func.count()).select_from(UserFeatureFlag))
        pending = await db.scalar(select(func.count()).where(User.status == "PENDING"))
    for role in (
        "ORGANIZATION_OWNER",
        "ORGANIZATION_BILLING_ADMIN",
        "ORGANIZATION_OBSERVE_ADMIN",
        "ORGANIZATION_OBSERVE_MEMBER",
        "ORGANIZATION_MEMBER",
    ):
        assert org_roles[role] >= 1, role
    assert {"SYSTEM", "WORKSPACE", "DEPLOYMENT", "DAG", "DAG_TAG"} <= set(scope_types)
    assert dag_tags and scope_types["DAG"] >= 1
    assert len(invites) == result.invites >= 3 and pending == len(invites) - 1
    soon = utcnow() + timedelta(days=7)
    for invite in invites:
        assert invite.invitee_email == invite.invitee_email.casefold()
        assert invite.secret_digest and len(invite.secret_digest) == 64
        assert abs((invite.expires_at - soon).total_seconds()) < 120
    assert flags == result.feature_flags >= 3 and overrides and overrides >= 3

    r = await client.get("/v1/users/self", headers=bearer(result.token))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["username"] == DEFAULT_ADMIN
    assert {x["role"] for x in me["roles"]} >= {"SYSTEM_ADMIN", "ORGANIZATION_OWNER"}
    assert [i["organizationId"] for i in me["invites"]] == [result.organizations[1][1]]
    assert {f["key"]: f["value"] for f in me["featureFlags"]}["astro-observe"] is True

    org_id = result.organizations[0][1]
    ws_id = result.workspaces[0][1]
    r = await client.get(
        f"/v1/organizations/{org_id}/users",
        params={"sorts": "fullName:asc", "limit": 5},
        headers=bearer(result.token),
    )
    assert r.status_code == 200 and r.json()["totalCount"] > 20
    names = [u["fullName"] for u in r.json()["users"]]
    assert names == sorted(names)
    r = await client.get(
        f"/v1/organizations/{org_id}/users",
        params={"workspaceId": ws_id},
        headers=bearer(result.token),
    )
    assert r.status_code == 200 and 0 < r.json()["totalCount"] < 20


async def test_demo_if_empty_leaves_a_loaded_database_alone(database: Database) -> None:
    async with database.transaction() as db:
        await load_demo(db)
    async with database.transaction() as db:
        again = await load_demo(db, if_empty=True)
    assert not again.loaded and again.admin_username == DEFAULT_ADMIN and again.token is None
    with pytest.raises(Conflict):
        async with database.transaction() as db:
            await load_demo(db)


def test_demo_command(tmp_path: Path) -> None:
    env = {"TENANTRY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"}
    runner = CliRunner()
    first = runner.invoke(cli, ["demo", "--url", "http://localhost:9000"], env=env)
    assert first.exit_code == 0, first.output
    assert "export TOKEN=tnt_" in first.stdout
    assert "curl -s" in first.stdout and "http://localhost:9000/v1/users/self" in first.stdout
    assert "sorts=fullName:asc&limit=5" in first.stdout and "workspaceId=" in first.stdout
    second = runner.invoke(cli, ["demo", "--if-empty"], env=env)
    assert second.exit_code == 0
    assert "tenantry token create --user admin@example.com" in second.stderr
    assert "TOKEN" not in second.stdout
