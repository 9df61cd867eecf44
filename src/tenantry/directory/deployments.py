"""Deployments: scopes inside a workspace. Tenantry runs no Airflow; the client's other
fields are kept in `spec` and echoed back, never invented."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.access import scopes
from tenantry.access.principals import Principal
from tenantry.audit.log import record
from tenantry.clock import utcnow
from tenantry.db.models import Deployment
from tenantry.directory import organizations, workspaces
from tenantry.directory.paging import Page, check_window, order_by, parse_sorts
from tenantry.errors import FieldError, Invalid, NotFound

DEPLOYMENT_SORTS = ("name", "createdAt", "updatedAt")
MAX_SPEC_BYTES = 64 * 1024


@dataclass
class DeploymentFields:
    name: str | None = None
    description: str | None = None
    workspace_id: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)


def _apply(dep: Deployment, fields: DeploymentFields) -> None:
    if fields.name is not None:
        name = fields.name.strip()
        if not name or len(name) > 256:
            raise Invalid("invalid name", [FieldError("name", "invalid", "1 to 256 characters")])
        dep.name = name
    if fields.description is not None:
        dep.description = fields.description
    if fields.spec:
        dep.spec = {**(dep.spec or {}), **fields.spec}


async def load(db: AsyncSession, org_id: str, dep_id: str) -> Deployment:
    dep = await db.get(Deployment, dep_id)
    if dep is None or dep.organization_id != org_id:
        raise NotFound("deployment not found")
    return dep


def _scope(dep: Deployment) -> scopes.Scope:
    return scopes.deployment(dep.organization_id, dep.workspace_id, dep.id)


async def create_deployment(
    db: AsyncSession, actor: Principal, org_id: str, fields: DeploymentFields
) -> Deployment:
    await organizations.get_visible(db, actor, org_id)
    if not fields.workspace_id or fields.name is None:
        raise Invalid(
            "name and workspaceId are required",
            [
                FieldError(f, "required", "required")
                for f, v in (("name", fields.name), ("workspaceId", fields.workspace_id))
                if not v
            ],
        )
    try:
        ws = await workspaces.load(db, org_id, fields.workspace_id)
    except NotFound:
        raise Invalid(
            "no such workspace", [FieldError("workspaceId", "not_found", "no such workspace")]
        ) from None
    actor.require("workspace.deployments.create", scopes.workspace(org_id, ws.id))
    now = utcnow()
    dep = Deployment(
        organization_id=org_id,
        workspace_id=ws.id,
        name="",
        description="",
        spec={},
        created_at=now,
        updated_at=now,
        created_by=actor.actor_id,
        updated_by=actor.actor_id,
    )
    _apply(dep, fields)
    db.add(dep)
    await db.flush()
    await record(
        db,
        actor,
        "deployment.create",
        target_type="deployment",
        target_id=dep.id,
        organization_id=org_id,
    )
    return dep


async def get_deployment(
    db: AsyncSession, actor: Principal, org_id: str, dep_id: str
) -> Deployment:
    await organizations.get_visible(db, actor, org_id)
    dep = await load(db, org_id, dep_id)
    actor.require("deployment.get", _scope(dep))
    return dep


async def list_deployments(
    db: AsyncSession,
    actor: Principal,
    org_id: str,
    *,
    offset: int = 0,
    limit: int = 20,
    sorts: Sequence[str] = (),
    deployment_ids: Sequence[str] = (),
    workspace_ids: Sequence[str] = (),
    names: Sequence[str] = (),
) -> Page[Deployment]:
    """Deployments of the organization that the caller may see."""
    await organizations.get_visible(db, actor, org_id)
    check_window(offset, limit)
    order = order_by(
        parse_sorts(sorts, DEPLOYMENT_SORTS),
        {
            "name": Deployment.name,
            "createdAt": Deployment.created_at,
            "updatedAt": Deployment.updated_at,
        },
        Deployment.id,
    )
    query = select(Deployment).where(Deployment.organization_id == org_id)
    if deployment_ids:
        query = query.where(Deployment.id.in_(deployment_ids))
    if workspace_ids:
        query = query.where(Deployment.workspace_id.in_(workspace_ids))
    if names:
        query = query.where(Deployment.name.in_(names))
    if not actor.can("organization.deployments.list", scopes.organization(org_id)):
        grants = [g.scope for g in actor.grants.grants if g.scope.organization_id == org_id]
        ws_ids = {s.workspace_id for s in grants if s.type is scopes.ScopeType.WORKSPACE}
        dep_ids = {s.deployment_id for s in grants if s.deployment_id}
        query = query.where(Deployment.workspace_id.in_(ws_ids) | Deployment.id.in_(dep_ids))
    total = await db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await db.scalars(query.order_by(*order).offset(offset).limit(limit))
    return Page(list(rows), total, offset, limit)


async def update_deployment(
    db: AsyncSession, actor: Principal, org_id: str, dep_id: str, fields: DeploymentFields
) -> Deployment:
    await organizations.get_visible(db, actor, org_id)
    dep = await load(db, org_id, dep_id)
    actor.require("deployment.update", _scope(dep))
    if fields.workspace_id and fields.workspace_id != dep.workspace_id:
        raise Invalid(
            "a deployment cannot move to another workspace",
            [FieldError("workspaceId", "immutable", "cannot change")],
        )
    _apply(dep, fields)
    dep.updated_at = utcnow()
    dep.updated_by = actor.actor_id
    await db.flush()
    await record(
        db,
        actor,
        "deployment.update",
        target_type="deployment",
        target_id=dep.id,
        organization_id=org_id,
    )
    return dep


async def delete_deployment(db: AsyncSession, actor: Principal, org_id: str, dep_id: str) -> None:
    await organizations.get_visible(db, actor, org_id)
    dep = await load(db, org_id, dep_id)
    actor.require("deployment.delete", _scope(dep))
    await db.delete(dep)
    await db.flush()
    await record(
        db,
        actor,
        "deployment.delete",
        target_type="deployment",
        target_id=dep_id,
        organization_id=org_id,
    )
