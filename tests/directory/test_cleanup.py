"""Deleting a subject or a scope leaves no role binding or token behind."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select

from tenantry.db.models import RoleBinding, Token
from tenantry.directory import deployments, users, workspaces
from tenantry.identity.principals import system_principal
from tests.factories import World


async def _count(world: World, model: type, *where: ColumnElement[bool]) -> int:
    async with world.database.transaction() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_deleting_a_user_removes_their_bindings_and_their_tokens_bindings(
    world: World,
) -> None:
    org = await world.org()
    ws = await world.workspace(org)
    owner = await world.user()
    await world.roles(org, owner, "ORGANIZATION_OWNER", workspaces=[(ws.id, "WORKSPACE_OWNER")])
    token = await world.api_token(org, creator=owner, role="ORGANIZATION_MEMBER")
    assert await _count(world, RoleBinding, RoleBinding.subject_id == owner.id) == 1
    assert await _count(world, RoleBinding, RoleBinding.subject_id == token.id) == 1
    async with world.database.transaction() as db:
        await users.delete_user(db, system_principal(), owner.id)
    assert await _count(world, RoleBinding, RoleBinding.subject_id.in_([owner.id, token.id])) == 0
    assert await _count(world, Token, Token.user_id == owner.id) == 0


async def test_deleting_a_scope_removes_the_api_tokens_scoped_to_it(world: World) -> None:
    org = await world.org()
    ws, other_ws = await world.workspace(org, "gone"), await world.workspace(org, "stays")
    dep = await world.deployment(ws)
    ws_token = await world.api_token(
        org, role="WORKSPACE_MEMBER", type="WORKSPACE", entity_id=ws.id
    )
    dep_token = await world.api_token(
        org, role="DEPLOYMENT_ADMIN", type="DEPLOYMENT", entity_id=dep.id
    )
    kept = await world.api_token(
        org, role="WORKSPACE_MEMBER", type="WORKSPACE", entity_id=other_ws.id
    )
    async with world.database.transaction() as db:
        await deployments.delete_deployment(db, system_principal(), org.id, dep.id)
    assert await _count(world, Token, Token.id == dep_token.id) == 0
    assert await _count(world, Token, Token.id == ws_token.id) == 1
    async with world.database.transaction() as db:
        await workspaces.delete_workspace(db, system_principal(), org.id, ws.id)
    assert await _count(world, Token, Token.id.in_([ws_token.id, dep_token.id])) == 0
    assert (
        await _count(world, RoleBinding, RoleBinding.subject_id.in_([ws_token.id, dep_token.id]))
        == 0
    )
    assert await _count(world, Token, Token.id == kept.id) == 1
