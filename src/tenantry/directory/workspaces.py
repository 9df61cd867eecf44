"""Workspaces of an organization."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.access import scopes
from tenantry.access.principals import Principal
from tenantry.audit.log import record
from tenantry.clock import utcnow
from tenantry.db.models import Workspace
from tenantry.directory import organizations
from tenantry.directory.paging import Page, check_window, order_by, parse_sorts
from tenantry.errors import FieldError, Invalid, NotFound

WORKSPACE_SORTS = ("name", "createdAt", "updatedAt")


@dataclass
class WorkspaceFields:
    name: str | None = None
    description: str | None = None
    cicd_enforced_default: bool | None = None


def _apply(ws: Workspace, fields: WorkspaceFields) -> None:
    if fields.name is not None:
        name = fields.name.strip()
        if not name or len(name) > 256:
            raise Invalid("invalid name", [FieldError("name", "invalid", "1 to 256 characters")])
        ws.name = name
    if fields.description is not None:
        ws.description = fields.description
    if fields.cicd_enforced_default is not None:
        ws.cicd_enforced_default = fields.cicd_enforced_default


async def load(db: AsyncSession, org_id: str, ws_id: str) -> Workspace:
    ws = await db.get(Workspace, ws_id)
    if ws is None or ws.organization_id != org_id:
        raise NotFound("workspace not found")
    return ws


async def create_workspace(
    db: AsyncSession, actor: Principal, org_id: str, fields: WorkspaceFields
) -> Workspace:
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.workspaces.create", scopes.organization(org_id))
    if fields.name is None:
        raise Invalid("name is required", [FieldError("name", "required", "required")])
    now = utcnow()
    ws = Workspace(
        organization_id=org_id,
        name="",
        description="",
        cicd_enforced_default=False,
        created_at=now,
        updated_at=now,
        created_by=actor.actor_id,
        updated_by=actor.actor_id,
    )
    _apply(ws, fields)
    db.add(ws)
    await db.flush()
    await record(
        db,
        actor,
        "workspace.create",
        target_type="workspace",
        target_id=ws.id,
        organization_id=org_id,
    )
    return ws


async def get_workspace(db: AsyncSession, actor: Principal, org_id: str, ws_id: str) -> Workspace:
    await organizations.get_visible(db, actor, org_id)
    ws = await load(db, org_id, ws_id)
    actor.require("workspace.get", scopes.workspace(org_id, ws_id))
    return ws


async def list_workspaces(
    db: AsyncSession,
    actor: Principal,
    org_id: str,
    *,
    offset: int = 0,
    limit: int = 20,
    sorts: Sequence[str] = (),
    workspace_ids: Sequence[str] = (),
    names: Sequence[str] = (),
) -> Page[Workspace]:
    """Workspaces of the organization that the caller may see."""
    await organizations.get_visible(db, actor, org_id)
    check_window(offset, limit)
    order = order_by(
        parse_sorts(sorts, WORKSPACE_SORTS),
        {
            "name": Workspace.name,
            "createdAt": Workspace.created_at,
            "updatedAt": Workspace.updated_at,
        },
        Workspace.id,
    )
    query = select(Workspace).where(Workspace.organization_id == org_id)
    if workspace_ids:
        query = query.where(Workspace.id.in_(workspace_ids))
    if names:
        query = query.where(Workspace.name.in_(names))
    if not actor.can("organization.workspaces.list", scopes.organization(org_id)):
        visible = {
            g.scope.workspace_id
            for g in actor.grants.grants
            if g.scope.organization_id == org_id and g.scope.workspace_id
        }
        query = query.where(Workspace.id.in_(visible))
    total = await db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await db.scalars(query.order_by(*order).offset(offset).limit(limit))
    return Page(list(rows), total, offset, limit)


async def update_workspace(
    db: AsyncSession, actor: Principal, org_id: str, ws_id: str, fields: WorkspaceFields
) -> Workspace:
    await organizations.get_visible(db, actor, org_id)
    ws = await load(db, org_id, ws_id)
    actor.require("workspace.update", scopes.workspace(org_id, ws_id))
    _apply(ws, fields)
    ws.updated_at = utcnow()
    ws.updated_by = actor.actor_id
    await db.flush()
    await record(
        db,
        actor,
        "workspace.update",
        target_type="workspace",
        target_id=ws.id,
        organization_id=org_id,
    )
    return ws


async def delete_workspace(db: AsyncSession, actor: Principal, org_id: str, ws_id: str) -> None:
    """Deletes the workspace with its deployments and every role binding inside it."""
    await organizations.get_visible(db, actor, org_id)
    ws = await load(db, org_id, ws_id)
    actor.require("workspace.delete", scopes.workspace(org_id, ws_id))
    await db.delete(ws)
    await db.flush()
    await record(
        db,
        actor,
        "workspace.delete",
        target_type="workspace",
        target_id=ws_id,
        organization_id=org_id,
    )
