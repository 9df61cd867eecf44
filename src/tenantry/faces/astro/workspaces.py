"""Astro Platform workspaces of an organization."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import Response

from tenantry.directory import workspaces
from tenantry.directory.workspaces import WorkspaceFields
from tenantry.faces.astro import render_platform as render
from tenantry.faces.astro import schemas
from tenantry.faces.astro import schemas_platform as platform
from tenantry.faces.astro.deps import Caller, Limit, Offset, OrgId, WorkspaceId
from tenantry.faces.astro.errors import unreachable_is_forbidden
from tenantry.faces.http import Db, face_router
from tenantry.ids import ID_PATTERN

router = face_router(tags=["Workspace"], responses=schemas.ERRORS)
SortItem = Annotated[str, Query(pattern=r"^(name|createdAt|updatedAt):(asc|desc)$")]
IdItem = Annotated[str, Query(pattern=ID_PATTERN)]
NameItem = Annotated[str, Query(min_length=1, max_length=256)]


@router.get(
    "/organizations/{organizationId}/workspaces",
    responses={200: {"model": platform.WorkspacesPaginated}},
    operation_id="ListWorkspaces",
)
async def list_workspaces(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    workspaceIds: Annotated[list[IdItem], Query(max_length=100)] = [],  # noqa: B006
    names: Annotated[list[NameItem], Query(max_length=100)] = [],  # noqa: B006
    offset: Offset = 0,
    limit: Limit = 20,
    sorts: Annotated[list[SortItem], Query(max_length=10)] = [],  # noqa: B006
) -> Any:
    """The workspaces of the organization that the caller can see."""
    with unreachable_is_forbidden():
        view = await workspaces.list_workspaces_view(
            db,
            caller,
            organizationId,
            offset=offset,
            limit=limit,
            sorts=sorts,
            workspace_ids=workspaceIds,
            names=names,
        )
    return render.workspaces_page(view)


@router.post(
    "/organizations/{organizationId}/workspaces",
    responses={200: {"model": platform.Workspace}},
    operation_id="CreateWorkspace",
)
async def create_workspace(
    caller: Caller, db: Db, organizationId: OrgId, body: platform.CreateWorkspaceRequest
) -> Any:
    fields = WorkspaceFields(
        name=body.name, description=body.description, cicd_enforced_default=body.cicdEnforcedDefault
    )
    return render.workspace(
        await workspaces.create_workspace_view(db, caller, organizationId, fields)
    )


@router.get(
    "/organizations/{organizationId}/workspaces/{workspaceId}",
    responses={200: {"model": platform.Workspace}},
    operation_id="GetWorkspace",
)
async def get_workspace(
    caller: Caller, db: Db, organizationId: OrgId, workspaceId: WorkspaceId
) -> Any:
    view = await workspaces.get_workspace_view(db, caller, organizationId, workspaceId)
    return render.workspace(view)


@router.post(
    "/organizations/{organizationId}/workspaces/{workspaceId}",
    responses={200: {"model": platform.Workspace}},
    operation_id="UpdateWorkspace",
)
async def update_workspace(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    workspaceId: WorkspaceId,
    body: platform.UpdateWorkspaceRequest,
) -> Any:
    fields = WorkspaceFields(
        name=body.name, description=body.description, cicd_enforced_default=body.cicdEnforcedDefault
    )
    view = await workspaces.update_workspace_view(db, caller, organizationId, workspaceId, fields)
    return render.workspace(view)


@router.delete(
    "/organizations/{organizationId}/workspaces/{workspaceId}",
    status_code=204,
    response_class=Response,
    operation_id="DeleteWorkspace",
)
async def delete_workspace(
    caller: Caller, db: Db, organizationId: OrgId, workspaceId: WorkspaceId
) -> Response:
    """Deletes the workspace with its deployments and every role granted inside it."""
    await workspaces.delete_workspace(db, caller, organizationId, workspaceId)
    return Response(status_code=204)
