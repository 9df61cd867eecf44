"""SCIM tokens: made by an organization's owners (native face, CLI), shown once, stored as a
digest, audited; good on /scim/v2 only, where no other credential is good."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from tenantry.authz.engine import load_user_grants
from tenantry.cli import app as cli_app
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent, Token
from tenantry.directory import organizations, scim_tokens
from tenantry.directory.organizations import OrganizationFields
from tenantry.errors import ElevationRequired, NotFound
from tenantry.identity.policy import SecurityPolicy
from tenantry.identity.principals import Principal, system_principal
from tenantry.identity.scim_tokens import authenticate_scim
from tests.faces.routes import assert_face_error
from tests.faces.scim.conftest import BASE, assert_scim_error
from tests.factories import World, bearer

NATIVE = "/tenantry/v1"


async def test_an_owner_makes_lists_and_revokes_scim_tokens(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    owner, owner_token = await world.member(org, "ORGANIZATION_OWNER")
    path = f"{NATIVE}/organizations/{org.id}/scim-tokens"
    r = await client.post(
        path,
        json={"name": "okta", "defaultRole": "ORGANIZATION_MEMBER"},
        headers=bearer(owner_token),
    )
    assert r.status_code == 201, r.text
    made = r.json()
    secret = made["token"]
    assert secret.startswith("tnt_") and made["defaultRole"] == "ORGANIZATION_MEMBER"
    assert made["organizationId"] == org.id and made["expiresAt"] is not None
    # stored as its digest only, never the secret
    async with world.database.transaction() as db:
        row = await db.get(Token, made["id"])
        assert row is not None and row.kind == "scim" and row.user_id is None
        assert row.digest == hashlib.sha256(secret.encode()).hexdigest()
        events = list(await db.scalars(select(AuditEvent).where(AuditEvent.target_id == row.id)))
    assert [e.action for e in events] == ["organization.scim_token.create"]
    assert events[0].actor_id == owner.id and secret not in str(events[0].details)
    listed = await client.get(path, headers=bearer(owner_token))
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["tokens"]] == [made["id"]]
    assert "token" not in listed.json()["tokens"][0]
    assert (await client.get(f"{BASE}/Users", headers=bearer(secret))).status_code == 200
    gone = await client.delete(f"{path}/{made['id']}", headers=bearer(owner_token))
    assert gone.status_code == 204
    assert_scim_error(await client.get(f"{BASE}/Users", headers=bearer(secret)), 401)
    assert (await client.get(path, headers=bearer(owner_token))).json()["tokens"] == []


async def test_only_owners_of_the_organization_make_scim_tokens(
    client: httpx.AsyncClient, world: World
) -> None:
    org, other = await world.org(), await world.org("Other")
    _, member_token = await world.member(org, "ORGANIZATION_MEMBER")
    _, foreign_owner = await world.member(other, "ORGANIZATION_OWNER")
    path = f"{NATIVE}/organizations/{org.id}/scim-tokens"
    refused = await client.post(path, json={}, headers=bearer(member_token))
    assert refused.status_code == 403
    assert_face_error("native", refused)
    hidden = await client.post(path, json={}, headers=bearer(foreign_owner))
    assert hidden.status_code == 404
    assert_face_error("native", hidden)
    # an owner of another organization cannot revoke this one's token either
    async with world.database.transaction() as db:
        minted = await scim_tokens.create_scim_token(db, system_principal(), org.id)
    r = await client.delete(
        f"{NATIVE}/organizations/{other.id}/scim-tokens/{minted.token.id}",
        headers=bearer(foreign_owner),
    )
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"defaultRole": "ORGANIZATION_OWNER"}, "defaultRole"),
        ({"defaultRole": "WORKSPACE_OWNER"}, "defaultRole"),
        ({"expiresInDays": 0}, "expiresInDays"),
        ({"expiresInDays": 9999}, "expiresInDays"),
    ],
)
async def test_bad_scim_token_requests_are_refused(
    client: httpx.AsyncClient, world: World, body: dict[str, object], field: str
) -> None:
    org = await world.org()
    _, owner_token = await world.member(org, "ORGANIZATION_OWNER")
    path = f"{NATIVE}/organizations/{org.id}/scim-tokens"
    r = await client.post(path, json=body, headers=bearer(owner_token))
    assert r.status_code == 400, r.text
    assert field in str(r.json().get("errors")), r.json()
    async with world.database.transaction() as db:
        assert list(await db.scalars(select(Token).where(Token.kind == "scim"))) == []


async def test_elevation_when_the_instance_requires_it(world: World) -> None:
    org = await world.org()
    owner, _ = await world.member(org, "ORGANIZATION_OWNER")
    async with world.database.transaction() as db:
        actor = Principal(
            grants=await load_user_grants(db, owner.id),
            user=owner,
            policy=SecurityPolicy(require_elevation=True),
        )
        with pytest.raises(ElevationRequired):
            await scim_tokens.create_scim_token(db, actor, org.id)
        with pytest.raises(NotFound):
            await scim_tokens.list_scim_tokens(
                db, Principal(grants=await load_user_grants(db, owner.id)), "c" + "x" * 24
            )


def test_the_cli_prints_the_token_last(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTRY_DATABASE_URL", database.settings.database_url)
    org = asyncio.run(_in_new_database(database, _new_org))
    result = CliRunner().invoke(
        cli_app,
        [
            "scim",
            "token",
            "create",
            "--organization",
            org,
            "--expires-in",
            "30d",
            "--default-role",
            "ORGANIZATION_OBSERVE_MEMBER",
        ],
    )
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("tnt_")

    async def authenticated(db: AsyncSession) -> tuple[str | None, str | None]:
        principal = await authenticate_scim(db, secret)
        assert principal.token is not None
        return principal.token.organization_id, principal.token.default_role

    assert asyncio.run(_in_new_database(database, authenticated)) == (
        org,
        "ORGANIZATION_OBSERVE_MEMBER",
    )
    refused = CliRunner().invoke(
        cli_app, ["scim", "token", "create", "--organization", org, "--default-role", "NOPE"]
    )
    assert refused.exit_code == 1
    unknown = CliRunner().invoke(cli_app, ["scim", "token", "create", "--organization", "nope"])
    assert unknown.exit_code == 1


T = TypeVar("T")


async def _in_new_database(database: Database, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    other = Database(database.settings)
    try:
        async with other.transaction() as db:
            return await work(db)
    finally:
        await other.dispose()


async def _new_org(db: AsyncSession) -> str:
    org = await organizations.create_organization(
        db, system_principal(), OrganizationFields(name="Cli")
    )
    return org.id
