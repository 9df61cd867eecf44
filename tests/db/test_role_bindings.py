"""role_bindings: several SYSTEM roles per subject, one role per scope everywhere else (partial
unique index, SQLite and PostgreSQL alike); the permission engine unions SYSTEM grants; setting a
single system role replaces them all; migration 0004 downgrades and upgrades again."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from tenantry.authz.catalogue import ROLE_PERMISSIONS
from tenantry.authz.engine import load_user_grants
from tenantry.authz.scopes import SYSTEM_SCOPE, Scope, ScopeType
from tenantry.authz.system_roles import grant_system_role, set_system_roles
from tenantry.db.migrate import alembic_config, upgrade
from tenantry.db.models import RoleBinding
from tenantry.directory import accounts
from tenantry.identity.principals import system_principal
from tests.conftest import _admin, _with_database
from tests.factories import World


def _system(user_id: str, role: str) -> RoleBinding:
    return RoleBinding(
        subject_type="user",
        subject_id=user_id,
        role=role,
        scope_type="SYSTEM",
        scope_key=SYSTEM_SCOPE.key,
    )


async def _system_roles(world: World, user_id: str) -> list[str]:
    async with world.database.transaction() as db:
        rows = await db.scalars(
            select(RoleBinding.role)
            .where(RoleBinding.subject_id == user_id, RoleBinding.scope_type == "SYSTEM")
            .order_by(RoleBinding.role)
        )
        return list(rows)


async def test_several_system_roles_but_one_role_per_other_scope(world: World) -> None:
    user = await world.user()
    async with world.database.transaction() as db:
        db.add_all([_system(user.id, "SYSTEM_VIEWER"), _system(user.id, "SYSTEM_EDITOR")])
    assert await _system_roles(world, user.id) == ["SYSTEM_EDITOR", "SYSTEM_VIEWER"]
    # The same SYSTEM role twice is still refused.
    with pytest.raises(IntegrityError):
        async with world.database.transaction() as db:
            db.add(_system(user.id, "SYSTEM_VIEWER"))
    # At any other scope, a second role for the same subject and scope is refused.
    org = await world.org()
    ws = await world.workspace(org)
    await world.roles(org, user, workspaces=[(ws.id, "WORKSPACE_MEMBER")])
    scope = Scope(ScopeType.WORKSPACE, organization_id=org.id, workspace_id=ws.id)
    with pytest.raises(IntegrityError):
        async with world.database.transaction() as db:
            db.add(
                RoleBinding(
                    organization_id=org.id,
                    subject_type="user",
                    subject_id=user.id,
                    role="WORKSPACE_OWNER",
                    scope_type="WORKSPACE",
                    scope_key=scope.key,
                    workspace_id=ws.id,
                )
            )
    async with world.database.transaction() as db:
        roles = await db.scalars(
            select(RoleBinding.role).where(
                RoleBinding.subject_id == user.id, RoleBinding.scope_type == "WORKSPACE"
            )
        )
        assert list(roles) == ["WORKSPACE_MEMBER"]


async def test_engine_unions_system_grants(world: World) -> None:
    user = await world.user()
    async with world.database.transaction() as db:
        await set_system_roles(db, user.id, ["SYSTEM_VIEWER", "SYSTEM_EDITOR"])
    async with world.database.transaction() as db:
        grants = await load_user_grants(db, user.id)
    assert sorted(g.role for g in grants.grants) == ["SYSTEM_EDITOR", "SYSTEM_VIEWER"]
    union = ROLE_PERMISSIONS["SYSTEM_VIEWER"] | ROLE_PERMISSIONS["SYSTEM_EDITOR"]
    only_editor = sorted(ROLE_PERMISSIONS["SYSTEM_EDITOR"] - ROLE_PERMISSIONS["SYSTEM_VIEWER"])
    only_viewer = sorted(ROLE_PERMISSIONS["SYSTEM_VIEWER"] - ROLE_PERMISSIONS["SYSTEM_EDITOR"])
    assert only_editor  # the test means something only if each adds something
    for permission in union:
        assert grants.check(permission, SYSTEM_SCOPE), permission
    for permission in ROLE_PERMISSIONS["SYSTEM_ADMIN"] - union:
        assert not grants.check(permission, SYSTEM_SCOPE), permission
    assert {p for p, s in grants.effective() if s.key == SYSTEM_SCOPE.key} == union
    explained = grants.explain(only_editor[0], SYSTEM_SCOPE)
    assert [g.role for g in explained] == ["SYSTEM_EDITOR"]
    if only_viewer:
        assert [g.role for g in grants.explain(only_viewer[0], SYSTEM_SCOPE)] == ["SYSTEM_VIEWER"]


async def test_setting_one_system_role_replaces_them_all(world: World) -> None:
    user = await world.user()
    async with world.database.transaction() as db:
        await set_system_roles(db, user.id, ["SYSTEM_VIEWER", "SYSTEM_DEPLOYMENT_VIEWER"])
    assert await _system_roles(world, user.id) == ["SYSTEM_DEPLOYMENT_VIEWER", "SYSTEM_VIEWER"]
    async with world.database.transaction() as db:  # the native face's and the CLI's way
        await accounts.set_system_role(db, system_principal(), user.id, "SYSTEM_EDITOR")
    assert await _system_roles(world, user.id) == ["SYSTEM_EDITOR"]
    async with world.database.transaction() as db:
        await set_system_roles(db, user.id, ["SYSTEM_VIEWER", "SYSTEM_EDITOR"])
    async with world.database.transaction() as db:  # bootstrap / world.system_role
        await grant_system_role(db, user.id, "SYSTEM_ADMIN")
    assert await _system_roles(world, user.id) == ["SYSTEM_ADMIN"]
    async with world.database.transaction() as db:
        await set_system_roles(db, user.id, ["SYSTEM_VIEWER", "SYSTEM_EDITOR"])
    async with world.database.transaction() as db:
        await accounts.set_system_role(db, system_principal(), user.id, None)
    assert await _system_roles(world, user.id) == []


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An empty database of its own (migrated to head), for tests that migrate down."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        upgrade(url)
        yield url
        return
    server: str = request.getfixturevalue("pg_server")
    name = f"tenantry_mig_{secrets.token_hex(4)}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    url = _with_database(server, name)
    upgrade(url)
    yield url
    asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_migration_0004_down_and_up(fresh_url: str) -> None:
    url = fresh_url

    async def run(sql: str) -> list[tuple[object, ...]]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                result = await conn.exec_driver_sql(sql)
                return [tuple(row) for row in result.fetchall()] if result.returns_rows else []
        finally:
            await engine.dispose()

    insert = (
        "INSERT INTO role_bindings (subject_type, subject_id, role, scope_type, scope_key, "
        "created_at) VALUES ('user', 'u1', '{}', 'SYSTEM', 'SYSTEM', '2026-01-01 00:00:00')"
    )
    asyncio.run(run(insert.format("SYSTEM_VIEWER")))
    asyncio.run(run(insert.format("SYSTEM_EDITOR")))
    command.downgrade(alembic_config(url), "0003")
    # One role per scope again: the oldest binding stays.
    assert asyncio.run(run("SELECT role FROM role_bindings")) == [("SYSTEM_VIEWER",)]
    with pytest.raises(IntegrityError):
        asyncio.run(run(insert.format("SYSTEM_EDITOR")))
    upgrade(url)
    asyncio.run(run(insert.format("SYSTEM_EDITOR")))
    assert sorted(asyncio.run(run("SELECT role FROM role_bindings ORDER BY role"))) == [
        ("SYSTEM_EDITOR",),
        ("SYSTEM_VIEWER",),
    ]
