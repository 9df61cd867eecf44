"""directory.whoami: the one-statement load of a caller and their view (PostgreSQL) gives
exactly what the ordinary loaders give, for a caller with every kind of grant, and refuses
exactly what `authenticate` refuses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tenantry.clock import utcnow
from tenantry.db.engine import Database
from tenantry.db.models import FeatureFlag, Token, User, UserFeatureFlag
from tenantry.directory import whoami
from tenantry.directory.members import DagRole
from tenantry.errors import Unauthenticated
from tenantry.identity.policy import DEFAULT_POLICY
from tenantry.identity.principals import Principal, authenticate
from tests.factories import World
from tests.test_caching import statements


def facts(principal: Principal, view: whoami.CallerView) -> dict[str, object]:
    """What the faces read of a caller, in a comparable form."""
    assert principal.user is not None and principal.token is not None
    columns = [c.name for c in User.__table__.columns]
    token_columns = [c.name for c in Token.__table__.columns]
    return {
        "user": {c: getattr(principal.user, c) for c in columns},
        "token": {c: getattr(principal.token, c) for c in token_columns},
        "grants": [g.as_dict() for g in principal.grants.grants],
        "effective": sorted((p, s.key) for p, s in principal.grants.effective()),
        "teams": principal.grants.teams,
        "scopes": sorted(principal.scopes),
        "invites": [(i.id, i.organization_id, i.expires_at, i.role) for i in view.invites],
        "flags": view.feature_flags,
        "system_roles": view.system_roles,
        "sessions": view.active_sessions,
    }


async def slowly(database: Database, secret: str) -> dict[str, object]:
    return facts(*await whoami._load_slowly(database, secret, DEFAULT_POLICY))


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # the one statement is PG's
async def test_one_statement_loads_what_the_ordinary_loaders_load(
    database: Database, world: World
) -> None:
    org, other = await world.org("Main"), await world.org("Other")
    ws = await world.workspace(org)
    dep = await world.deployment(ws)
    role = await world.custom_role(org, "Auditor", ["deployment.get"])
    user = await world.user("every@example.com", "Every Grant")
    await world.system_role(user, "SYSTEM_VIEWER")
    await world.roles(
        org,
        user,
        "ORGANIZATION_OWNER",
        workspaces=[(ws.id, "WORKSPACE_MEMBER")],
        deployments=[(dep.id, role.name)],
        dags=[DagRole(dep.id, "DAG_VIEWER", dag_id="etl")],
    )
    await world.team(org, members=[user], workspaces=[(ws.id, "WORKSPACE_OWNER")])
    await world.invite(other, "every@example.com")
    async with world.database.transaction() as db:
        db.add(FeatureFlag(key="a-flag", default_value=False))
        db.add(FeatureFlag(key="b-flag", default_value=True))
        await db.flush()
        db.add(UserFeatureFlag(user_id=user.id, key="a-flag", value=True))
        await db.execute(update(User).where(User.id == user.id).values(attributes={"x": [1]}))
    secret = await world.token(user)
    fast = facts(*await whoami.load(database, secret, DEFAULT_POLICY))
    assert fast == await slowly(database, secret)
    assert fast["flags"] == (("a-flag", True), ("b-flag", True))
    assert fast["system_roles"] == ("SYSTEM_VIEWER",)
    assert len(fast["grants"]) == 7  # type: ignore[arg-type]


async def test_every_refusal_reads_the_same(database: Database, world: World) -> None:
    user = await world.user()
    secret = await world.token(user)
    expired = await world.token(await world.user(), days=1)
    async with world.database.transaction() as db:
        past = utcnow() - timedelta(seconds=1)
        await db.execute(update(Token).values(expires_at=past).where(Token.user_id != user.id))
    disabled_user = await world.user()
    disabled = await world.token(disabled_user)
    async with world.database.transaction() as db:
        await db.execute(update(User).where(User.id == disabled_user.id).values(enabled=False))
    for bad in ("tnt_made-up", expired, disabled, "tnt_" + "x" * 5000):
        with pytest.raises(Unauthenticated) as refused:
            await whoami.load(database, bad, DEFAULT_POLICY)
        assert str(refused.value) == "invalid or expired token"
    principal, _ = await whoami.load(database, secret, DEFAULT_POLICY)
    assert principal.user is not None and principal.user.id == user.id


async def test_an_api_token_takes_the_ordinary_loaders(database: Database, world: World) -> None:
    org = await world.org()
    minted = await world.api_token(org, role="ORGANIZATION_MEMBER")
    principal, view = await whoami.load(database, minted.secret, DEFAULT_POLICY)
    assert principal.user is None and principal.token is not None
    assert principal.token.id == minted.id
    assert principal.ceiling is not None  # capped by its creator, as authenticate does
    assert view == whoami.CallerView()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # the one statement is PG's
async def test_a_writer_is_authenticated_in_one_statement_into_its_session(
    database: Database, world: World
) -> None:
    """authenticate_to_write: the principal `authenticate` gives, from one statement, its user
    and token belonging to the writer's session (a change to them is flushed and committed)."""
    org = await world.org()
    ws = await world.workspace(org)
    user = await world.user("writer@example.com")
    await world.roles(org, user, "ORGANIZATION_OWNER", workspaces=[(ws.id, "WORKSPACE_MEMBER")])
    await world.team(org, members=[user], workspaces=[(ws.id, "WORKSPACE_OWNER")])
    secret = await world.token(user)
    async with database.transaction() as db:
        ordinary = await authenticate(db, secret, DEFAULT_POLICY)
        expected = [g.as_dict() for g in ordinary.grants.grants], ordinary.grants.teams
    with statements(database) as seen:
        async with database.transaction() as db:
            principal = await whoami.authenticate_to_write(db, secret, DEFAULT_POLICY)
            assert principal.user is not None and principal.token is not None
            assert principal.user in db and principal.token in db
            principal.user.full_name = "Renamed In Session"
    assert [s.split()[0] for s in seen] == ["SELECT", "UPDATE", "SELECT"]  # notify: pg_notify
    assert "t.kind <> 'api'" in seen[0] and "full_name" in seen[1]
    assert ([g.as_dict() for g in principal.grants.grants], principal.grants.teams) == expected
    async with database.transaction(write=False) as db:
        stored = await db.scalar(select(User.full_name).where(User.id == user.id))
        assert stored == "Renamed In Session"
        for bad in ("tnt_made-up", "tnt_" + "x" * 5000):
            with pytest.raises(Unauthenticated, match="invalid or expired token"):
                await whoami.authenticate_to_write(db, bad, DEFAULT_POLICY)
