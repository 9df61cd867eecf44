"""The one guard on strong grants, at the service level (tests/rules/ proves it over the wire).

With elevation required, an ORGANIZATION_OWNER's credential may hand out a strong role (an
organization owner, a workspace owner, an API token or custom role that grants access) only
after that very credential re-entered its password; a personal token of the same user never
shares a session's elevation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz.catalogue import STRONG_ROLES, is_strong
from tenantry.db.models import Organization, User
from tenantry.directory import accounts, api_tokens, custom_roles, invites, members, teams
from tenantry.directory.members import RoleSet
from tenantry.errors import ElevationRequired
from tenantry.identity import sessions
from tenantry.identity.passwords import Hasher
from tenantry.identity.policy import SecurityPolicy
from tenantry.identity.principals import Principal, authenticate, system_principal
from tenantry.identity.ratelimit import MemoryRateLimiter
from tests.factories import World

PASSWORD = "correct horse battery staple"
STRICT = SecurityPolicy(require_elevation=True)
HASHER = Hasher(2, 19456, 1)
Grant = Callable[[AsyncSession, Principal, Organization, User], Awaitable[Any]]


async def _replace_roles(db: AsyncSession, actor: Principal, org: Organization, u: User) -> Any:
    roles = RoleSet("ORGANIZATION_OWNER")
    return await members.replace_user_roles(db, actor, org.id, u.id, roles)


async def _team(db: AsyncSession, actor: Principal, org: Organization, u: User) -> Any:
    new = teams.NewTeam("owners", member_ids=[u.id], organization_role="ORGANIZATION_OWNER")
    return await teams.create_team(db, actor, org.id, new)


async def _invite(db: AsyncSession, actor: Principal, org: Organization, u: User) -> Any:
    return await invites.create_invite(
        db, actor, org.id, "new.owner@example.com", "ORGANIZATION_OWNER"
    )


async def _api_token(db: AsyncSession, actor: Principal, org: Organization, u: User) -> Any:
    new = api_tokens.NewApiToken(
        name="ci", type="ORGANIZATION", entity_id=org.id, role="ORGANIZATION_OWNER"
    )
    return await api_tokens.create_api_token(db, actor, org.id, new)


async def _custom_role(db: AsyncSession, actor: Principal, org: Organization, u: User) -> Any:
    fields = custom_roles.RoleFields(
        name="granter", permissions=["deployment.get", "deployment.users.roles.update"]
    )
    return await custom_roles.create_role(db, actor, org.id, "DEPLOYMENT", fields)


GRANTS: dict[str, Grant] = {
    "member roles": _replace_roles,
    "team": _team,
    "invite": _invite,
    "api token": _api_token,
    "custom role": _custom_role,
}


def test_strong_roles_are_the_ones_that_grant() -> None:
    assert {"ORGANIZATION_OWNER", "WORKSPACE_OWNER", "DEPLOYMENT_ADMIN"} <= STRONG_ROLES
    assert all(is_strong(r) for r in ("SYSTEM_ADMIN", "SYSTEM_VIEWER"))
    assert not any(is_strong(r) for r in ("ORGANIZATION_MEMBER", "WORKSPACE_MEMBER", "DAG_VIEWER"))


async def _owner(world: World) -> tuple[Organization, User, User]:
    org = await world.org()
    owner = await world.user()
    await world.roles(org, owner, "ORGANIZATION_OWNER")
    async with world.database.transaction() as db:
        await accounts.set_password(db, HASHER, system_principal(), owner.id, PASSWORD)
    target = await world.user()
    await world.roles(org, target)
    return org, owner, target


async def _session(world: World, user: User, *, elevate: bool) -> str:
    async with world.database.transaction() as db:
        minted = await sessions.start_session(db, STRICT, user.id)
    if elevate:
        async with world.database.transaction() as db:
            actor = await authenticate(db, minted.secret, STRICT)
            limits = sessions.Limits(MemoryRateLimiter(), 1000, 1000)
            outcome = await sessions.elevate(db, HASHER, limits, actor, PASSWORD, None)
            assert outcome.until is not None
    return minted.secret


@pytest.mark.parametrize("path", sorted(GRANTS))
async def test_strong_grant_needs_the_credentials_elevation(world: World, path: str) -> None:
    org, owner, target = await _owner(world)
    personal = await world.token(owner)
    plain = await _session(world, owner, elevate=False)
    elevated = await _session(world, owner, elevate=True)
    for secret in (personal, plain):  # a personal token never shares a session's elevation
        async with world.database.transaction() as db:
            actor = await authenticate(db, secret, STRICT)
            with pytest.raises(ElevationRequired):
                await GRANTS[path](db, actor, org, target)
    async with world.database.transaction() as db:
        actor = await authenticate(db, elevated, STRICT)
        assert actor.elevated
        await GRANTS[path](db, actor, org, target)


async def test_a_weak_grant_needs_no_elevation(world: World) -> None:
    org, owner, target = await _owner(world)
    personal = await world.token(owner)
    async with world.database.transaction() as db:
        actor = await authenticate(db, personal, STRICT)
        after = await members.replace_user_roles(
            db, actor, org.id, target.id, RoleSet("ORGANIZATION_MEMBER", [], [], [])
        )
    assert after.organization_role == "ORGANIZATION_MEMBER"
