"""Workspaces of an organization.

Visibility: a caller sees a workspace when they hold `workspace.get` there (from a role at the
workspace, the organization or the system). An organization member without a workspace role
therefore lists no workspaces, as in Astro; an organization owner lists them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz import scopes
from tenantry.authz.bindings import drop_api_tokens_in
from tenantry.authz.scopes import ScopeType
from tenantry.clock import utcnow
from tenantry.db.models import Workspace
from tenantry.db.paging import Page, check_window, order_by, parse_sorts
from tenantry.directory import organizations
from tenantry.directory.organizations import (
    authors,
    check_filter,
    check_name,
    check_text,
)
from tenantry.directory.subjects import Subjects, load_subjects
from tenantry.errors import FieldError, Invalid, NotFound
from tenantry.identity.principals import Principal

WORKSPACE_SORTS = ("name", "createdAt", "updatedAt")
MAX_NAME = 256
MAX_DESCRIPTION = 2048


@dataclass
class WorkspaceFields:
    name: str | None = None
    description: str | None = None
    cicd_enforced_default: bool | None = None


def _apply(ws: Workspace, fields: WorkspaceFields) -> None:
    if fields.name is not None:
        ws.name = check_name(fields.name, max_length=MAX_NAME)
    if fields.description is not None:
        ws.description = check_text(fields.description, "description", MAX_DESCRIPTION)
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
    await organizations.get_reachable(db, actor, org_id)
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
    await organizations.get_reachable(db, actor, org_id)
    ws = await load(db, org_id, ws_id)
    actor.require("workspace.get", scopes.workspace(org_id, ws_id))
    return ws


def visible_workspace_ids(actor: Principal, org_id: str) -> set[str] | None:
    """The workspaces of the organization the caller may see; None means all of them."""
    if actor.can("workspace.get", scopes.organization(org_id)):
        return None
    return {
        g.scope.workspace_id
        for g in actor.grants.grants
        if g.scope.type is ScopeType.WORKSPACE
        and g.scope.organization_id == org_id
        and g.scope.workspace_id
        and actor.can("workspace.get", g.scope)
    }


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
    await organizations.get_reachable(db, actor, org_id)
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
    check_filter("workspaceIds", workspace_ids)
    check_filter("names", names)
    query = select(Workspace).where(Workspace.organization_id == org_id)
    if workspace_ids:
        query = query.where(Workspace.id.in_(workspace_ids))
    if names:
        query = query.where(Workspace.name.in_(names))
    visible = visible_workspace_ids(actor, org_id)
    if visible is not None:
        query = query.where(Workspace.id.in_(visible))
    total = await db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await db.scalars(query.order_by(*order).offset(offset).limit(limit))
    return Page(list(rows), total, offset, limit)


async def update_workspace(
    db: AsyncSession, actor: Principal, org_id: str, ws_id: str, fields: WorkspaceFields
) -> Workspace:
    await organizations.get_reachable(db, actor, org_id)
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
    await organizations.get_reachable(db, actor, org_id)
    ws = await load(db, org_id, ws_id)
    actor.require("workspace.delete", scopes.workspace(org_id, ws_id))
    await drop_api_tokens_in(db, workspace_id=ws_id)
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


# --- views: the workspace with what rendering it needs ---------------------------------------


@dataclass(frozen=True)
class WorkspaceView:
    workspace: Workspace
    organization_name: str
    subjects: Subjects


@dataclass(frozen=True)
class WorkspacePage:
    page: Page[Workspace]
    organization_name: str
    subjects: Subjects


async def _view(db: AsyncSession, ws: Workspace) -> WorkspaceView:
    org = await organizations.load(db, ws.organization_id)  # already in the session
    return WorkspaceView(ws, org.name, await load_subjects(db, authors([ws])))


async def create_workspace_view(
    db: AsyncSession, actor: Principal, org_id: str, fields: WorkspaceFields
) -> WorkspaceView:
    return await _view(db, await create_workspace(db, actor, org_id, fields))


async def get_workspace_view(
    db: AsyncSession, actor: Principal, org_id: str, ws_id: str
) -> WorkspaceView:
    return await _view(db, await get_workspace(db, actor, org_id, ws_id))


async def update_workspace_view(
    db: AsyncSession, actor: Principal, org_id: str, ws_id: str, fields: WorkspaceFields
) -> WorkspaceView:
    return await _view(db, await update_workspace(db, actor, org_id, ws_id, fields))


async def list_workspaces_view(
    db: AsyncSession,
    actor: Principal,
    org_id: str,
    *,
    offset: int = 0,
    limit: int = 20,
    sorts: Sequence[str] = (),
    workspace_ids: Sequence[str] = (),
    names: Sequence[str] = (),
) -> WorkspacePage:
    page = await list_workspaces(
        db,
        actor,
        org_id,
        offset=offset,
        limit=limit,
        sorts=sorts,
        workspace_ids=workspace_ids,
        names=names,
    )
    org = await organizations.load(db, org_id)
    return WorkspacePage(page, org.name, await load_subjects(db, authors(page.items)))
