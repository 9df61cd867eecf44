"""Resolve workspace and deployment ids inside one organization into scopes."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import Executable, String, bindparam, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz import scopes
from tenantry.authz.scopes import Scope, ScopeType
from tenantry.db.models import Deployment, Organization, Workspace
from tenantry.errors import Invalid, NotFound


async def workspace_ids_in(db: AsyncSession, org_id: str, ids: Iterable[str]) -> set[str]:
    return (await ids_in(db, org_id, ids, ()))[0]


async def deployment_workspaces_in(
    db: AsyncSession, org_id: str, ids: Iterable[str]
) -> dict[str, str]:
    """deployment id -> its workspace id, for those of `ids` that live in the organization."""
    return (await ids_in(db, org_id, (), ids))[1]


_WORKSPACES_IN = select(literal("w"), Workspace.id, null().cast(String)).where(
    Workspace.organization_id == bindparam("org"), Workspace.id.in_(bindparam("ws", expanding=True))
)
_DEPLOYMENTS_IN = select(literal("d"), Deployment.id, Deployment.workspace_id).where(
    Deployment.organization_id == bindparam("org"),
    Deployment.id.in_(bindparam("dep", expanding=True)),
)
# Constants, their parameters bound: SQLAlchemy keys a compiled statement by walking it,
# which a statement built per call pays on every execution.
_IDS_IN: dict[tuple[bool, bool], Executable] = {
    (True, False): _WORKSPACES_IN,
    (False, True): _DEPLOYMENTS_IN,
    (True, True): union_all(_WORKSPACES_IN, _DEPLOYMENTS_IN),
}


async def ids_in(
    db: AsyncSession, org_id: str, workspace_ids: Iterable[str], deployment_ids: Iterable[str]
) -> tuple[set[str], dict[str, str]]:
    """`workspace_ids_in` and `deployment_workspaces_in` at once, in one statement (a role
    change checks both; each round trip costs a write about half a millisecond of CPU)."""
    ws_wanted, dep_wanted = set(workspace_ids), set(deployment_ids)
    statement = _IDS_IN.get((bool(ws_wanted), bool(dep_wanted)))
    if statement is None:
        return set(), {}
    params = {"org": org_id, "ws": list(ws_wanted), "dep": list(dep_wanted)}
    rows = (await db.execute(statement, params)).all()
    workspaces = {found for kind, found, _ in rows if kind == "w"}
    return workspaces, {found: ws or "" for kind, found, ws in rows if kind == "d"}


async def workspace_scope(db: AsyncSession, org_id: str, ws_id: str) -> Scope | None:
    found = await workspace_ids_in(db, org_id, [ws_id])
    return scopes.workspace(org_id, ws_id) if found else None


async def deployment_scope(db: AsyncSession, org_id: str, dep_id: str) -> Scope | None:
    found = await deployment_workspaces_in(db, org_id, [dep_id])
    if dep_id not in found:
        return None
    return scopes.deployment(org_id, found[dep_id], dep_id)


_STORED = {ScopeType.ORGANIZATION: "organization", ScopeType.WORKSPACE: "workspace"}


async def resolve(
    db: AsyncSession,
    scope_type: ScopeType,
    entity_id: str | None,
    *,
    dag_id: str | None = None,
    dag_tag: str | None = None,
    visible: Callable[[str], bool] | None = None,
) -> Scope:
    """Any scope named by type and id, with its ancestors filled in; 404 if it does not exist,
    or (given `visible`, which says which organizations the caller may know of) if it lies
    in an organization the caller may not know of: the very same 404, raised before anything
    else is checked, so that another tenant's real id answers as a made-up one."""
    if scope_type is ScopeType.SYSTEM:
        return scopes.SYSTEM_SCOPE
    # What a missing one is called: a DAG or DAG_TAG scope names its deployment.
    missing = NotFound(f"{_STORED.get(scope_type, 'deployment')} not found")
    if entity_id is None:
        raise NotFound(f"{scope_type.value.lower()} not found")
    found: Organization | Workspace | Deployment | None
    if scope_type is ScopeType.ORGANIZATION:
        found = await db.get(Organization, entity_id)
    elif scope_type is ScopeType.WORKSPACE:
        found = await db.get(Workspace, entity_id)
    else:
        found = await db.get(Deployment, entity_id)
    if found is None:
        raise missing
    org_id = found.id if isinstance(found, Organization) else found.organization_id
    if visible is not None and not visible(org_id):
        raise missing
    if isinstance(found, Organization):
        return scopes.organization(found.id)
    if isinstance(found, Workspace):
        return scopes.workspace(found.organization_id, found.id)
    return _deployment_scope(found, scope_type, dag_id, dag_tag)


def _deployment_scope(
    dep: Deployment, scope_type: ScopeType, dag_id: str | None, dag_tag: str | None
) -> Scope:
    if scope_type is ScopeType.DAG and dag_id:
        return scopes.dag(dep.organization_id, dep.workspace_id, dep.id, dag_id)
    if scope_type is ScopeType.DAG_TAG and dag_tag:
        return scopes.dag_tag(dep.organization_id, dep.workspace_id, dep.id, dag_tag)
    if scope_type is not ScopeType.DEPLOYMENT:
        raise Invalid("a DAG scope needs a dagId, a DAG_TAG scope a dagTag")
    return scopes.deployment(dep.organization_id, dep.workspace_id, dep.id)
