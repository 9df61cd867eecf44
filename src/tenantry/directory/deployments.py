"""Deployments: scopes inside a workspace. Tenantry runs no Airflow; the client's other
fields are kept in `spec` and echoed back, never invented.

Visibility: a caller sees a deployment when they hold `deployment.get` there (from a role at the
deployment, its workspace, the organization or the system).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz import scopes
from tenantry.authz.bindings import drop_api_tokens_in
from tenantry.authz.scopes import ScopeType
from tenantry.clock import utcnow
from tenantry.db.models import Deployment, Workspace
from tenantry.db.paging import Page, check_window, order_by, parse_sorts
from tenantry.directory import organizations, workspaces
from tenantry.directory.organizations import (
    NUL,
    authors,
    check_filter,
    check_name,
    check_text,
)
from tenantry.directory.subjects import Subjects, load_subjects
from tenantry.errors import FieldError, Invalid, NotFound
from tenantry.identity.principals import Principal

DEPLOYMENT_SORTS = ("name", "createdAt", "updatedAt")
MAX_SPEC_BYTES = 64 * 1024
MAX_SPEC_DEPTH = 32
MAX_NAME = 256
MAX_DESCRIPTION = 2048
# Spec keys the service itself reads. Secret environment variable values are never kept:
# Tenantry runs nothing that could use them, and what is not stored cannot leak.
CICD_KEY = "isCicdEnforced"
ENV_KEY = "environmentVariables"


@dataclass
class DeploymentFields:
    """`spec` holds every other field the client sent; a key whose value is None is removed."""

    name: str | None = None
    description: str | None = None
    workspace_id: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)


def _without_secret_values(spec: dict[str, Any]) -> dict[str, Any]:
    variables = spec.get(ENV_KEY)
    if not isinstance(variables, list):
        return spec
    kept = [
        {k: v for k, v in var.items() if k != "value"}
        if isinstance(var, dict) and var.get("isSecret") is True
        else var
        for var in variables
    ]
    return {**spec, ENV_KEY: kept}


def _merged_spec(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    merged = _without_secret_values(merged)
    _check_json(merged, 0)
    if len(orjson.dumps(merged)) > MAX_SPEC_BYTES:
        raise Invalid(
            "deployment fields too large",
            [FieldError("body", "too_large", f"at most {MAX_SPEC_BYTES} bytes of fields")],
        )
    return merged


def _check_json(value: Any, depth: int) -> None:
    """Only what both databases store and the faces render back: no NUL (PostgreSQL refuses
    it), numbers within the 64-bit integer range, at most MAX_SPEC_DEPTH levels of nesting."""
    problem = None
    if depth > MAX_SPEC_DEPTH:
        problem = f"nested deeper than {MAX_SPEC_DEPTH} levels"
    elif isinstance(value, str):
        problem = "contains NUL" if NUL in value else None
    elif isinstance(value, bool) or value is None:
        problem = None
    elif isinstance(value, int):
        problem = None if -(2**63) <= value < 2**63 else "integer out of 64-bit range"
    elif isinstance(value, float):
        # PostgreSQL's jsonb keeps 1e300 as an exact numeric and gives it back as a 301-digit
        # integer, so large floats are held to the same 64-bit range as integers.
        finite = math.isfinite(value)
        problem = None if finite and abs(value) < 2**63 else "number out of range"
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                problem = "contains NUL"
                break
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)
    if problem is not None:
        raise Invalid(
            f"invalid deployment field: {problem}", [FieldError("body", "invalid", problem)]
        )


def _apply(dep: Deployment, fields: DeploymentFields) -> None:
    if fields.name is not None:
        dep.name = check_name(fields.name, max_length=MAX_NAME)
    if fields.description is not None:
        dep.description = check_text(fields.description, "description", MAX_DESCRIPTION)
    if fields.spec:
        # A new dict, so that the JSON column sees the change.
        dep.spec = _merged_spec(dep.spec or {}, fields.spec)


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
    """Only a name and a workspace are required. A deployment that does not say whether it
    enforces CI/CD deploys takes its workspace's `cicdEnforcedDefault`."""
    await organizations.get_reachable(db, actor, org_id)
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
    spec = dict(fields.spec)
    if spec.get(CICD_KEY) is None:
        spec[CICD_KEY] = ws.cicd_enforced_default
    _apply(dep, DeploymentFields(fields.name, fields.description, ws.id, spec))
    db.add(dep)
    await db.flush()
    await record(
        db,
        actor,
        "deployment.create",
        target_type="deployment",
        target_id=dep.id,
        organization_id=org_id,
        details={"workspaceId": ws.id},
    )
    return dep


async def get_deployment(
    db: AsyncSession, actor: Principal, org_id: str, dep_id: str
) -> Deployment:
    await organizations.get_reachable(db, actor, org_id)
    dep = await load(db, org_id, dep_id)
    actor.require("deployment.get", _scope(dep))
    return dep


def visible_scopes(actor: Principal, org_id: str) -> tuple[set[str], set[str]] | None:
    """(workspace ids, deployment ids) whose deployments the caller may see; None means all."""
    if actor.can("deployment.get", scopes.organization(org_id)):
        return None
    inside = [
        g.scope
        for g in actor.grants.grants
        if g.scope.organization_id == org_id and actor.can("deployment.get", g.scope)
    ]
    ws_ids = {s.workspace_id for s in inside if s.type is ScopeType.WORKSPACE and s.workspace_id}
    dep_ids = {
        s.deployment_id for s in inside if s.type is ScopeType.DEPLOYMENT and s.deployment_id
    }
    return ws_ids, dep_ids


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
    await organizations.get_reachable(db, actor, org_id)
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
    check_filter("deploymentIds", deployment_ids)
    check_filter("workspaceIds", workspace_ids)
    check_filter("names", names)
    query = select(Deployment).where(Deployment.organization_id == org_id)
    if deployment_ids:
        query = query.where(Deployment.id.in_(deployment_ids))
    if workspace_ids:
        query = query.where(Deployment.workspace_id.in_(workspace_ids))
    if names:
        query = query.where(Deployment.name.in_(names))
    visible = visible_scopes(actor, org_id)
    if visible is not None:
        ws_ids, dep_ids = visible
        query = query.where(Deployment.workspace_id.in_(ws_ids) | Deployment.id.in_(dep_ids))
    total = await db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await db.scalars(query.order_by(*order).offset(offset).limit(limit))
    return Page(list(rows), total, offset, limit)


async def update_deployment(
    db: AsyncSession, actor: Principal, org_id: str, dep_id: str, fields: DeploymentFields
) -> Deployment:
    """Fields not sent keep their values; a deployment never moves to another workspace."""
    await organizations.get_reachable(db, actor, org_id)
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
    """Deletes the deployment with every role binding inside it."""
    await organizations.get_reachable(db, actor, org_id)
    dep = await load(db, org_id, dep_id)
    actor.require("deployment.delete", _scope(dep))
    await drop_api_tokens_in(db, deployment_id=dep_id)
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


# --- views: the deployment with what rendering it needs --------------------------------------


@dataclass(frozen=True)
class DeploymentView:
    deployment: Deployment
    workspace_name: str
    subjects: Subjects


@dataclass(frozen=True)
class DeploymentPage:
    page: Page[Deployment]
    workspace_names: Mapping[str, str]
    subjects: Subjects


async def _view(db: AsyncSession, dep: Deployment) -> DeploymentView:
    ws = await workspaces.load(db, dep.organization_id, dep.workspace_id)
    return DeploymentView(dep, ws.name, await load_subjects(db, authors([dep])))


async def create_deployment_view(
    db: AsyncSession, actor: Principal, org_id: str, fields: DeploymentFields
) -> DeploymentView:
    return await _view(db, await create_deployment(db, actor, org_id, fields))


async def get_deployment_view(
    db: AsyncSession, actor: Principal, org_id: str, dep_id: str
) -> DeploymentView:
    return await _view(db, await get_deployment(db, actor, org_id, dep_id))


async def update_deployment_view(
    db: AsyncSession, actor: Principal, org_id: str, dep_id: str, fields: DeploymentFields
) -> DeploymentView:
    return await _view(db, await update_deployment(db, actor, org_id, dep_id, fields))


async def list_deployments_view(
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
) -> DeploymentPage:
    page = await list_deployments(
        db,
        actor,
        org_id,
        offset=offset,
        limit=limit,
        sorts=sorts,
        deployment_ids=deployment_ids,
        workspace_ids=workspace_ids,
        names=names,
    )
    ws_ids = {d.workspace_id for d in page.items}
    names_by_id: dict[str, str] = {}
    if ws_ids:
        rows = await db.execute(
            select(Workspace.id, Workspace.name).where(
                Workspace.organization_id == org_id, Workspace.id.in_(ws_ids)
            )
        )
        names_by_id = dict(rows.all())
    return DeploymentPage(page, names_by_id, await load_subjects(db, authors(page.items)))
