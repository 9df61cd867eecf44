"""Astro roles: an organization's custom roles and the built-in role catalogue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import Response

from tenantry.directory import custom_roles
from tenantry.directory.custom_roles import RoleFields, RoleQuery
from tenantry.faces.astro import render_iam, schemas, schemas_iam
from tenantry.faces.astro.deps import Caller, Limit, Offset, OrgId, RoleId
from tenantry.faces.http import Db, face_router

router = face_router(tags=["Role"], responses=schemas.ERRORS)
SortItem = Annotated[
    str, Query(pattern=r"^(name|scopeType|description|createdAt|updatedAt):(asc|desc)$")
]


@router.get(
    "/organizations/{organizationId}/roles",
    responses={200: {"model": schemas_iam.RolesPaginated}},
    operation_id="ListRoles",
)
async def list_roles(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    includeDefaultRoles: bool = False,
    scopeTypes: Annotated[list[schemas_iam.RoleScopeFilter], Query(max_length=10)] = [],  # noqa: B006
    offset: Offset = 0,
    limit: Limit = 20,
    sorts: Annotated[list[SortItem], Query(max_length=10)] = [],  # noqa: B006
) -> Any:
    """The organization's custom roles, a page at a time; with `includeDefaultRoles=true`
    also the built-in roles (ORGANIZATION, WORKSPACE, DEPLOYMENT and DAG scope) and their
    permissions. `scopeTypes` filters both."""
    query = RoleQuery(
        includeDefaultRoles,
        tuple(s.value for s in scopeTypes),
        offset,
        limit,
        tuple(sorts),
    )
    return render_iam.roles_page(await custom_roles.list_roles(db, caller, organizationId, query))


@router.post(
    "/organizations/{organizationId}/roles",
    responses={200: {"model": schemas_iam.RoleWithPermission}},
    operation_id="CreateCustomRole",
)
async def create_custom_role(
    caller: Caller, db: Db, organizationId: OrgId, body: schemas_iam.CreateCustomRoleRequest
) -> Any:
    fields = RoleFields(
        name=body.name,
        permissions=body.permissions,
        description=body.description,
        restricted_workspace_ids=body.restrictedWorkspaceIds,
    )
    view = await custom_roles.create_role(db, caller, organizationId, body.scopeType.value, fields)
    return render_iam.role_with_permissions(view)


@router.get(
    "/organizations/{organizationId}/roles/{roleId}",
    responses={200: {"model": schemas_iam.RoleWithPermission}},
    operation_id="GetCustomRole",
)
async def get_custom_role(caller: Caller, db: Db, organizationId: OrgId, roleId: RoleId) -> Any:
    view = await custom_roles.get_role(db, caller, organizationId, roleId)
    return render_iam.role_with_permissions(view)


@router.post(
    "/organizations/{organizationId}/roles/{customRoleId}",
    responses={200: {"model": schemas_iam.RoleWithPermission}},
    operation_id="UpdateCustomRole",
)
async def update_custom_role(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    customRoleId: RoleId,
    body: schemas_iam.UpdateCustomRoleRequest,
) -> Any:
    """Replaces name and permissions. Renaming keeps every assignment of the role."""
    fields = RoleFields(
        name=body.name,
        permissions=body.permissions,
        description=body.description,
        restricted_workspace_ids=body.restrictedWorkspaceIds,
    )
    view = await custom_roles.update_role(db, caller, organizationId, customRoleId, fields)
    return render_iam.role_with_permissions(view)


@router.delete(
    "/organizations/{organizationId}/roles/{customRoleId}",
    status_code=204,
    operation_id="DeleteCustomRole",
)
async def delete_custom_role(
    caller: Caller, db: Db, organizationId: OrgId, customRoleId: RoleId
) -> Response:
    """Refused with 409 while the role is still assigned to anyone."""
    await custom_roles.delete_role(db, caller, organizationId, customRoleId)
    return Response(status_code=204)
