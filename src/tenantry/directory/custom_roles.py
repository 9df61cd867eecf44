"""An organization's custom roles (DEPLOYMENT and DAG scope): list with the built-in catalogue,
read, create, update (renaming carries the role bindings along) and delete (only when unused).

Role bindings name their role, so a custom role is found by (organization, name) and a rename
rewrites the organization's bindings of that role in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz import scopes
from tenantry.authz.catalogue import (
    BUILTIN_ROLES,
    CUSTOM_ROLE_SCOPES,
    ROLES,
    BuiltinRole,
    is_strong_permission_set,
    permissions_valid_at,
)
from tenantry.authz.scopes import ScopeType
from tenantry.clock import utcnow
from tenantry.db.engine import scoped
from tenantry.db.generation import role_scope
from tenantry.db.models import CustomRole, RoleBinding
from tenantry.db.paging import Page, check_window, order_by, parse_sorts
from tenantry.directory import organizations, tree
from tenantry.directory.subjects import Subject, load_subjects
from tenantry.errors import Conflict, FieldError, Invalid, NotFound
from tenantry.identity.principals import Principal
from tenantry.ids import new_id

ROLE_SORTS = ("name", "scopeType", "description", "createdAt", "updatedAt")
_SORT_COLUMNS: dict[str, Any] = {
    "name": CustomRole.name,
    "scopeType": CustomRole.scope_type,
    "description": CustomRole.description,
    "createdAt": CustomRole.created_at,
    "updatedAt": CustomRole.updated_at,
}
# Scopes whose roles an organization can hand out: the ones its role listing shows.
LISTED_SCOPES = (ScopeType.ORGANIZATION, ScopeType.WORKSPACE, ScopeType.DEPLOYMENT, ScopeType.DAG)
MAX_NAME = 128
MAX_DESCRIPTION = 2048
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class RoleQuery:
    include_default_roles: bool = False
    scope_types: tuple[str, ...] = ()
    offset: int = 0
    limit: int = 20
    sorts: tuple[str, ...] = ()


@dataclass
class RoleFields:
    """What a caller sets on a custom role; None means "leave as is" (on update)."""

    name: str
    permissions: Sequence[str]
    description: str | None = None
    restricted_workspace_ids: Sequence[str] | None = None


@dataclass(frozen=True)
class RoleView:
    role: CustomRole
    subjects: Mapping[str, Subject]


@dataclass(frozen=True)
class RoleListing:
    page: Page[CustomRole]
    default_roles: tuple[BuiltinRole, ...] | None  # None unless asked for
    subjects: Mapping[str, Subject]


def binding_scope_types(scope_type: str) -> tuple[str, ...]:
    """Scope types of the bindings that can use a custom role of this scope type."""
    if scope_type == ScopeType.DAG.value:
        return (ScopeType.DAG.value, ScopeType.DAG_TAG.value)
    return (scope_type,)


# --- validation ------------------------------------------------------------------------------


def _check_name(name: str, errors: list[FieldError]) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or _CONTROL.search(name):
        errors.append(FieldError("name", "invalid", f"1 to {MAX_NAME} printable characters"))
    elif name.casefold() in {r.casefold() for r in ROLES}:
        errors.append(FieldError("name", "reserved", "the name of a built-in role"))
    return name


def _check_scope(scope_type: str, errors: list[FieldError]) -> ScopeType | None:
    allowed = [s.value for s in CUSTOM_ROLE_SCOPES]
    if scope_type not in allowed:
        errors.append(FieldError("scopeType", "invalid", f"one of {', '.join(allowed)}"))
        return None
    return ScopeType(scope_type)


def _check_permissions(
    permissions: Sequence[str], scope: ScopeType | None, errors: list[FieldError]
) -> list[str]:
    if not permissions:
        errors.append(FieldError("permissions", "required", "at least one permission"))
        return []
    if scope is None:
        return []
    valid = permissions_valid_at(scope)
    for i, permission in enumerate(permissions):
        if permission not in valid:
            errors.append(
                FieldError(
                    f"permissions[{i}]",
                    "invalid",
                    f"not a permission a {scope.value} role can hold",
                )
            )
    return sorted(set(permissions))


async def _check_workspaces(
    db: AsyncSession, org_id: str, ids: Sequence[str], errors: list[FieldError]
) -> list[str]:
    found = await tree.workspace_ids_in(db, org_id, ids)
    seen: set[str] = set()
    for i, ws_id in enumerate(ids):
        if ws_id in seen:
            errors.append(FieldError(f"restrictedWorkspaceIds[{i}]", "duplicate", "listed twice"))
        elif ws_id not in found:
            errors.append(
                FieldError(f"restrictedWorkspaceIds[{i}]", "not_found", "no such workspace")
            )
        seen.add(ws_id)
    return list(ids)


async def _ensure_name_free(db: AsyncSession, org_id: str, name: str) -> None:
    taken = await db.scalar(
        select(CustomRole.id).where(CustomRole.organization_id == org_id, CustomRole.name == name)
    )
    if taken is not None:
        raise Conflict(
            f"a custom role named {name!r} already exists in this organization",
            [FieldError("name", "conflict", "already taken")],
        )


async def _load(db: AsyncSession, org_id: str, role_id: str, *, lock: bool = False) -> CustomRole:
    query = select(CustomRole).where(CustomRole.id == role_id, CustomRole.organization_id == org_id)
    role = await db.scalar(query.with_for_update() if lock else query)
    if role is None:
        raise NotFound("role not found")
    return role


def _snapshot(role: CustomRole) -> dict[str, Any]:
    return {
        "name": role.name,
        "scopeType": role.scope_type,
        "description": role.description,
        "permissions": list(role.permissions),
        "restrictedWorkspaceIds": list(role.restricted_workspace_ids),
    }


async def _view(db: AsyncSession, role: CustomRole) -> RoleView:
    return RoleView(role, await load_subjects(db, [role.created_by, role.updated_by]))


# --- use cases -------------------------------------------------------------------------------


async def list_roles(db: AsyncSession, actor: Principal, org_id: str, q: RoleQuery) -> RoleListing:
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.roles.list", scopes.organization(org_id))
    check_window(q.offset, q.limit)
    listed = {s.value for s in LISTED_SCOPES}
    for i, scope_type in enumerate(q.scope_types):
        if scope_type not in listed:
            raise Invalid(
                f"invalid scopeTypes item {scope_type!r}",
                [FieldError(f"scopeTypes[{i}]", "invalid", f"one of {', '.join(sorted(listed))}")],
            )
    wanted = set(q.scope_types) or listed
    order = order_by(parse_sorts(q.sorts, ROLE_SORTS), _SORT_COLUMNS, CustomRole.id)
    query = select(CustomRole).where(
        CustomRole.organization_id == org_id, CustomRole.scope_type.in_(wanted)
    )
    total = await db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows: list[CustomRole] = []
    if q.limit > 0 and q.offset < total:
        rows = list(await db.scalars(query.order_by(*order).offset(q.offset).limit(q.limit)))
    defaults = None
    if q.include_default_roles:
        defaults = tuple(r for r in BUILTIN_ROLES if r.scope.value in wanted)
    subjects = await load_subjects(db, [i for r in rows for i in (r.created_by, r.updated_by)])
    return RoleListing(Page(rows, total, q.offset, q.limit), defaults, subjects)


async def get_role(db: AsyncSession, actor: Principal, org_id: str, role_id: str) -> RoleView:
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.roles.get", scopes.organization(org_id))
    return await _view(db, await _load(db, org_id, role_id))


async def create_role(
    db: AsyncSession, actor: Principal, org_id: str, scope_type: str, fields: RoleFields
) -> RoleView:
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.roles.create", scopes.organization(org_id))
    errors: list[FieldError] = []
    name = _check_name(fields.name, errors)
    scope = _check_scope(scope_type, errors)
    permissions = _check_permissions(fields.permissions, scope, errors)
    workspace_ids = await _check_workspaces(
        db, org_id, fields.restricted_workspace_ids or [], errors
    )
    description = fields.description or ""
    if len(description) > MAX_DESCRIPTION:
        errors.append(FieldError("description", "invalid", f"at most {MAX_DESCRIPTION} chars"))
    if errors:
        raise Invalid("invalid custom role", errors)
    if is_strong_permission_set(permissions):  # a role that grants access is a strong grant
        actor.require_elevation()
    await _ensure_name_free(db, org_id, name)
    now = utcnow()
    role = CustomRole(
        id=new_id(),
        organization_id=org_id,
        name=name,
        description=description,
        scope_type=scope_type,
        permissions=permissions,
        restricted_workspace_ids=workspace_ids,
        created_at=now,
        created_by=actor.actor_id,
        updated_at=now,
        updated_by=actor.actor_id,
    )
    db.add(role)
    await db.flush()
    await record(
        db,
        actor,
        "organization.role.create",
        target_type="role",
        target_id=role.id,
        organization_id=org_id,
        details=_snapshot(role),
    )
    return await _view(db, role)


async def update_role(
    db: AsyncSession, actor: Principal, org_id: str, role_id: str, fields: RoleFields
) -> RoleView:
    """Replaces name and permissions (and description / workspaces when given). A rename
    renames the organization's bindings of the role; new permissions apply at once."""
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.roles.update", scopes.organization(org_id))
    role = await _load(db, org_id, role_id, lock=True)
    errors: list[FieldError] = []
    name = _check_name(fields.name, errors)
    permissions = _check_permissions(fields.permissions, ScopeType(role.scope_type), errors)
    workspace_ids = None
    if fields.restricted_workspace_ids is not None:
        workspace_ids = await _check_workspaces(db, org_id, fields.restricted_workspace_ids, errors)
    if fields.description is not None and len(fields.description) > MAX_DESCRIPTION:
        errors.append(FieldError("description", "invalid", f"at most {MAX_DESCRIPTION} chars"))
    if errors:
        raise Invalid("invalid custom role", errors)
    before = _snapshot(role)
    if name != role.name:
        await _ensure_name_free(db, org_id, name)
        await db.execute(
            update(RoleBinding)
            .where(
                RoleBinding.organization_id == org_id,
                RoleBinding.role == role.name,
                RoleBinding.scope_type.in_(binding_scope_types(role.scope_type)),
            )
            .values(role=name)
            .execution_options(
                synchronize_session=False,
                **scoped(role_scope(org_id, role.name), role_scope(org_id, name)),
            )
        )
        role.name = name
    if is_strong_permission_set(set(permissions) - set(role.permissions)):
        actor.require_elevation()  # every holder gains the new permissions at once
    role.permissions = permissions
    if workspace_ids is not None:
        role.restricted_workspace_ids = workspace_ids
    if fields.description is not None:
        role.description = fields.description
    role.updated_at = utcnow()
    role.updated_by = actor.actor_id
    await db.flush()
    await record(
        db,
        actor,
        "organization.role.update",
        target_type="role",
        target_id=role.id,
        organization_id=org_id,
        details={"before": before, "after": _snapshot(role)},
    )
    return await _view(db, role)


async def delete_role(db: AsyncSession, actor: Principal, org_id: str, role_id: str) -> None:
    """Refused (409) while any user, team or API token still holds the role."""
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.roles.delete", scopes.organization(org_id))
    role = await _load(db, org_id, role_id, lock=True)
    in_use = (
        await db.scalar(
            select(func.count())
            .select_from(RoleBinding)
            .where(
                RoleBinding.organization_id == org_id,
                RoleBinding.role == role.name,
                RoleBinding.scope_type.in_(binding_scope_types(role.scope_type)),
            )
        )
        or 0
    )
    if in_use:
        raise Conflict(
            f"custom role {role.name!r} is still assigned ({in_use} role binding(s)); "
            "remove it from those users, teams and API tokens first"
        )
    details = _snapshot(role)
    await db.delete(role)
    await db.flush()
    await record(
        db,
        actor,
        "organization.role.delete",
        target_type="role",
        target_id=role_id,
        organization_id=org_id,
        details=details,
    )
