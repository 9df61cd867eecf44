"""Astro Platform deployments. Tenantry runs no Airflow: a deployment is a scope for roles,
and every other field the client sends is kept and echoed back (see render_platform)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import Response

from tenantry.directory import deployments
from tenantry.directory.deployments import DeploymentFields
from tenantry.faces.astro import render_platform as render
from tenantry.faces.astro import schemas
from tenantry.faces.astro import schemas_platform as platform
from tenantry.faces.astro.deps import Caller, DeploymentId, Limit, Offset, OrgId
from tenantry.faces.astro.errors import unreachable_is_forbidden
from tenantry.faces.http import Db, face_router
from tenantry.ids import ID_PATTERN

router = face_router(tags=["Deployment"], responses=schemas.ERRORS)
SortItem = Annotated[str, Query(pattern=r"^(name|createdAt|updatedAt):(asc|desc)$")]
IdItem = Annotated[str, Query(pattern=ID_PATTERN)]
NameItem = Annotated[str, Query(min_length=1, max_length=256)]


def _fields(body: platform.DeploymentBody) -> DeploymentFields:
    return DeploymentFields(
        name=body.name,
        description=body.description,
        workspace_id=body.workspaceId,
        spec=body.spec(),
    )


@router.get(
    "/organizations/{organizationId}/deployments",
    responses={200: {"model": platform.DeploymentsPaginated}},
    operation_id="ListDeployments",
)
async def list_deployments(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    deploymentIds: Annotated[list[IdItem], Query(max_length=100)] = [],  # noqa: B006
    workspaceIds: Annotated[list[IdItem], Query(max_length=100)] = [],  # noqa: B006
    names: Annotated[list[NameItem], Query(max_length=100)] = [],  # noqa: B006
    offset: Offset = 0,
    limit: Limit = 20,
    sorts: Annotated[list[SortItem], Query(max_length=10)] = [],  # noqa: B006
) -> Any:
    """The deployments of the organization that the caller can see."""
    with unreachable_is_forbidden():
        view = await deployments.list_deployments_view(
            db,
            caller,
            organizationId,
            offset=offset,
            limit=limit,
            sorts=sorts,
            deployment_ids=deploymentIds,
            workspace_ids=workspaceIds,
            names=names,
        )
    return render.deployments_page(view)


@router.post(
    "/organizations/{organizationId}/deployments",
    responses={200: {"model": platform.Deployment}},
    operation_id="CreateDeployment",
)
async def create_deployment(
    caller: Caller, db: Db, organizationId: OrgId, body: platform.CreateDeploymentRequest
) -> Any:
    """Only `name` and `workspaceId` are required; every other field is kept and echoed."""
    with unreachable_is_forbidden():
        view = await deployments.create_deployment_view(db, caller, organizationId, _fields(body))
    return render.deployment(view)


@router.get(
    "/organizations/{organizationId}/deployments/{deploymentId}",
    responses={200: {"model": platform.Deployment}},
    operation_id="GetDeployment",
)
async def get_deployment(
    caller: Caller, db: Db, organizationId: OrgId, deploymentId: DeploymentId
) -> Any:
    view = await deployments.get_deployment_view(db, caller, organizationId, deploymentId)
    return render.deployment(view)


@router.post(
    "/organizations/{organizationId}/deployments/{deploymentId}",
    responses={200: {"model": platform.Deployment}},
    operation_id="UpdateDeployment",
)
async def update_deployment(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    deploymentId: DeploymentId,
    body: platform.UpdateDeploymentRequest,
) -> Any:
    """Fields not sent keep their values; null removes a field."""
    view = await deployments.update_deployment_view(
        db, caller, organizationId, deploymentId, _fields(body)
    )
    return render.deployment(view)


@router.delete(
    "/organizations/{organizationId}/deployments/{deploymentId}",
    status_code=204,
    response_class=Response,
    operation_id="DeleteDeployment",
)
async def delete_deployment(
    caller: Caller, db: Db, organizationId: OrgId, deploymentId: DeploymentId
) -> Response:
    """Deletes the deployment with every role granted inside it."""
    await deployments.delete_deployment(db, caller, organizationId, deploymentId)
    return Response(status_code=204)
