"""Resolve workspace and deployment ids inside one organization into scopes."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz import scopes
from tenantry.authz.scopes import Scope, ScopeType
from tenantry.db.models import Deployment, Organization, Workspace
from tenantry.errors import Invalid, NotFound


async def workspace_ids_in(db: AsyncSession, org_id: str, ids: Iterable[str]) -> set[str]:
    wanted = set(ids)
    if not wanted:
        return set()
    rows = await db.scalars(
        select(Workspace.id).where(Workspace.organization_id == org_id, Workspace.id.in_(wanted))
    )
    return set(rows)


async def deployment_workspaces_in(
    db: AsyncSession, org_id: str, ids: Iterable[str]
) -> dict[str, str]:
    """deployment id -> its workspace id, for those of `ids` that live in the organization."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await db.execute(
        select(Deployment.id, Deployment.workspace_id).where(
            Deployment.organization_id == org_id, Deployment.id.in_(wanted)
        )
    )
    return dict(rows.all())


async def workspace_scope(db: AsyncSession, org_id: str, ws_id: str) -> Scope | None:
    found = await workspace_ids_in(db, org_id, [ws_id])
    return scopes.workspace(org_id, ws_id) if found else None


async def deployment_scope(db: AsyncSession, org_id: str, dep_id: str) -> Scope | None:
    found = await deployment_workspaces_in(db, org_id, [dep_id])
    if dep_id not in found:
        return None
    return scopes.deployment(org_id, found[dep_id], dep_id)


async def resolve(
    db: AsyncSession,
    scope_type: ScopeType,
    entity_id: str | None,
    *,
    dag_id: str | None = None,
    dag_tag: str | None = None,
) -> Scope:
    """Any scope named by type and id, with its ancestors filled in; 404 if it does not exist."""
    if scope_type is ScopeType.SYSTEM:
        return scopes.SYSTEM_SCOPE
    if entity_id is None:
        raise NotFound(f"{scope_type.value.lower()} not found")
    if scope_type is ScopeType.ORGANIZATION:
        if await db.get(Organization, entity_id) is None:
            raise NotFound("organization not found")
        return scopes.organization(entity_id)
    if scope_type is ScopeType.WORKSPACE:
        ws = await db.get(Workspace, entity_id)
        if ws is None:
            raise NotFound("workspace not found")
        return scopes.workspace(ws.organization_id, ws.id)
    dep = await db.get(Deployment, entity_id)
    if dep is None:
        raise NotFound("deployment not found")
    base = scopes.deployment(dep.organization_id, dep.workspace_id, dep.id)
    if scope_type is ScopeType.DAG and dag_id:
        return scopes.dag(dep.organization_id, dep.workspace_id, dep.id, dag_id)
    if scope_type is ScopeType.DAG_TAG and dag_tag:
        return scopes.dag_tag(dep.organization_id, dep.workspace_id, dep.id, dag_tag)
    if scope_type is not ScopeType.DEPLOYMENT:
        raise Invalid("a DAG scope needs a dagId, a DAG_TAG scope a dagTag")
    return base
