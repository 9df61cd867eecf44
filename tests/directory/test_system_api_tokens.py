"""System API tokens (directory/system_api_tokens.py): who may make and revoke them, elevation,
audit, the secret shown once, what they authenticate as, and isolation from organizations'
API tokens."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz.engine import load_user_grants
from tenantry.authz.scopes import SYSTEM_SCOPE
from tenantry.db.models import AuditEvent, RoleBinding, Token, User
from tenantry.directory import api_tokens, system_api_tokens
from tenantry.errors import ElevationRequired, Forbidden, Invalid, NotFound, Unauthenticated
from tenantry.identity.policy import SecurityPolicy
from tenantry.identity.principals import Principal, authenticate, system_principal
from tests.factories import World


async def _as(db: AsyncSession, user: User, policy: SecurityPolicy | None = None) -> Principal:
    principal = Principal(grants=await load_user_grants(db, user.id), user=user)
    if policy is not None:
        principal.policy = policy
    return principal


async def _make(
    world: World, actor_user: User | None = None, role: str = "SYSTEM_ADMIN"
) -> system_api_tokens.SystemApiToken:
    async with world.database.transaction() as db:
        actor = system_principal() if actor_user is None else await _as(db, actor_user)
        return await system_api_tokens.create_system_api_token(
            db, actor, role=role, name="ci", expires_in_days=30
        )


async def test_a_system_admin_makes_one_stored_as_a_digest_and_audited(world: World) -> None:
    admin = await world.admin()
    made = await _make(world, admin)
    assert made.secret is not None and made.secret.startswith("tnt_")
    async with world.database.transaction(write=False) as db:
        row = await db.get(Token, made.token.id)
        assert row is not None
        assert (row.kind, row.user_id, row.organization_id, row.scope_type) == (
            "api",
            None,
            None,
            "SYSTEM",
        )
        assert row.digest == hashlib.sha256(made.secret.encode()).hexdigest()
        assert made.secret not in str([getattr(row, c.name) for c in Token.__table__.columns])
        events = list(await db.scalars(select(AuditEvent).where(AuditEvent.target_id == row.id)))
        assert [e.action for e in events] == ["system.api_token.create"]
        assert events[0].actor_id == admin.id and events[0].organization_id is None
        assert events[0].details["role"] == "SYSTEM_ADMIN"
        assert made.secret not in str(events[0].details)
        principal = await authenticate(db, made.secret)
    assert principal.user is None and principal.ceiling is None
    assert principal.actor_type == "token" and principal.actor_id == made.token.id
    assert [(g.role, g.scope.key) for g in principal.grants.grants] == [
        ("SYSTEM_ADMIN", SYSTEM_SCOPE.key)
    ]
    assert principal.can("system.users.create", SYSTEM_SCOPE)


async def test_the_secret_is_never_returned_again(world: World) -> None:
    made = await _make(world)
    async with world.database.transaction(write=False) as db:
        listed = await system_api_tokens.list_system_api_tokens(db, system_principal())
        got = await system_api_tokens.get_system_api_token(db, system_principal(), made.token.id)
    assert [(t.token.id, t.role, t.secret) for t in listed] == [
        (made.token.id, "SYSTEM_ADMIN", None)
    ]
    assert (got.role, got.secret) == ("SYSTEM_ADMIN", None)


@pytest.mark.parametrize("role", ["SYSTEM_EDITOR", "SYSTEM_VIEWER"])
async def test_only_system_admins_make_or_revoke_them(world: World, role: str) -> None:
    lesser = await world.user()
    await world.system_role(lesser, role)
    org = await world.org()
    owner, _ = await world.member(org, "ORGANIZATION_OWNER")
    made = await _make(world)
    for user in (lesser, owner):
        async with world.database.transaction() as db:
            actor = await _as(db, user)
            with pytest.raises(Forbidden, match=r"system\.apiTokens\.create"):
                await system_api_tokens.create_system_api_token(
                    db, actor, role="SYSTEM_VIEWER", expires_in_days=None
                )
            with pytest.raises(Forbidden, match=r"system\.apiTokens\.delete"):
                await system_api_tokens.revoke_system_api_token(db, actor, made.token.id)
    async with world.database.transaction(write=False) as db:
        left = await system_api_tokens.list_system_api_tokens(db, system_principal())
    assert [t.token.id for t in left] == [made.token.id]


async def test_a_token_never_makes_another(world: World) -> None:
    """Even a SYSTEM_ADMIN token: a leaked token must not mint its own successors."""
    made = await _make(world)
    assert made.secret is not None
    async with world.database.transaction() as db:
        as_token = await authenticate(db, made.secret)
        with pytest.raises(Forbidden, match="signed-in user or the CLI"):
            await system_api_tokens.create_system_api_token(
                db, as_token, role="SYSTEM_VIEWER", expires_in_days=1
            )
    async with world.database.transaction(write=False) as db:
        assert len(await system_api_tokens.list_system_api_tokens(db, system_principal())) == 1


async def test_elevation_when_the_instance_requires_it(world: World) -> None:
    admin = await world.admin()
    async with world.database.transaction() as db:
        actor = await _as(db, admin, SecurityPolicy(require_elevation=True))
        with pytest.raises(ElevationRequired):
            await system_api_tokens.create_system_api_token(
                db, actor, role="SYSTEM_VIEWER", expires_in_days=1
            )
    async with world.database.transaction(write=False) as db:
        assert await system_api_tokens.list_system_api_tokens(db, system_principal()) == []


@pytest.mark.parametrize(
    ("role", "name", "days", "field"),
    [
        ("ORGANIZATION_OWNER", "x", 1, "role"),
        ("NOPE", "x", 1, "role"),
        ("SYSTEM_ADMIN", "bad\x01name", 1, "name"),
        ("SYSTEM_ADMIN", "x" * 257, 1, "name"),
        ("SYSTEM_ADMIN", "x", 0, "expiresInDays"),
        ("SYSTEM_ADMIN", "x", 3651, "expiresInDays"),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(
    world: World, role: str, name: str, days: int, field: str
) -> None:
    async with world.database.transaction() as db:
        with pytest.raises(Invalid) as refused:
            await system_api_tokens.create_system_api_token(
                db, system_principal(), role=role, name=name, expires_in_days=days
            )
    assert [f.field for f in refused.value.fields] == [field]
    async with world.database.transaction(write=False) as db:
        assert list(await db.scalars(select(Token).where(Token.kind == "api"))) == []


async def test_revocation_refuses_it_drops_its_role_and_is_audited(world: World) -> None:
    admin = await world.admin()
    made = await _make(world, admin, "SYSTEM_VIEWER")
    assert made.secret is not None
    async with world.database.transaction() as db:
        await system_api_tokens.revoke_system_api_token(db, await _as(db, admin), made.token.id)
    async with world.database.transaction(write=False) as db:
        with pytest.raises(Unauthenticated):
            await authenticate(db, made.secret)
        bindings = await db.scalars(
            select(RoleBinding).where(RoleBinding.subject_id == made.token.id)
        )
        assert list(bindings) == []
        events = await db.scalars(
            select(AuditEvent.action).where(AuditEvent.target_id == made.token.id)
        )
        assert sorted(events) == ["system.api_token.create", "system.api_token.revoke"]
        assert await system_api_tokens.list_system_api_tokens(db, system_principal()) == []
        with pytest.raises(NotFound):
            await system_api_tokens.get_system_api_token(db, system_principal(), made.token.id)
    async with world.database.transaction() as db:
        with pytest.raises(NotFound):  # once is enough
            await system_api_tokens.revoke_system_api_token(db, system_principal(), made.token.id)


async def test_it_outlives_its_makers_role(world: World) -> None:
    """The instance's credential, not the admin's: no creator caps it (as Unleash's admin
    token); revoking it is how it ends."""
    admin = await world.admin()
    made = await _make(world, admin)
    assert made.secret is not None
    await world.system_role(admin, "SYSTEM_VIEWER")
    async with world.database.transaction(write=False) as db:
        principal = await authenticate(db, made.secret)
    assert principal.can("system.users.delete", SYSTEM_SCOPE)


async def test_organizations_api_tokens_and_system_tokens_never_mix(world: World) -> None:
    org = await world.org()
    org_token = await world.api_token(org, role="ORGANIZATION_OWNER")
    made = await _make(world)
    async with world.database.transaction(write=False) as db:
        system = await system_api_tokens.list_system_api_tokens(db, system_principal())
        page = await api_tokens.list_api_tokens(
            db, system_principal(), org.id, api_tokens.ApiTokenQuery()
        )
        with pytest.raises(NotFound):  # an organization's token is no system token
            await system_api_tokens.get_system_api_token(db, system_principal(), org_token.id)
        with pytest.raises(NotFound):  # nor the other way round
            await api_tokens.get_api_token(db, system_principal(), org.id, made.token.id)
    assert [t.token.id for t in system] == [made.token.id]
    assert [v.id for v in page.items] == [org_token.id]


async def test_an_org_token_without_user_is_still_refused(world: World) -> None:
    """Only the system kind authenticates without a user: a token row of no user that names an
    organization (no use case makes one) is refused as before."""
    org = await world.org()
    async with world.database.transaction() as db:
        from tenantry.identity import tokens

        minted = await tokens.mint(
            db, kind=tokens.TokenKind.API, user_id=None, organization_id=org.id
        )
        minted.token.scope_type = "SYSTEM"
    async with world.database.transaction(write=False) as db:
        with pytest.raises(Unauthenticated):
            await authenticate(db, minted.secret)
