"""Astro Platform organizations: list those the caller can see, read one, update one.
(Creating and deleting organizations is not part of the Astro API; see the native face.)"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from tenantry.directory import organizations
from tenantry.directory.organizations import OrganizationFields
from tenantry.faces.astro import render_platform as render
from tenantry.faces.astro import schemas
from tenantry.faces.astro import schemas_platform as platform
from tenantry.faces.astro.deps import Caller, Limit, Offset, OrgId
from tenantry.faces.http import Db, face_router

router = face_router(tags=["Organization"], responses=schemas.ERRORS)
SortItem = Annotated[str, Query(pattern=r"^(name|createdAt|updatedAt):(asc|desc)$")]


@router.get(
    "/organizations",
    responses={200: {"model": platform.OrganizationsPaginated}},
    operation_id="ListOrganizations",
)
async def list_organizations(
    caller: Caller,
    db: Db,
    supportPlan: platform.SupportPlan | None = None,
    product: platform.Product | None = None,
    offset: Offset = 0,
    limit: Limit = 20,
    sorts: Annotated[list[SortItem], Query(max_length=10)] = [],  # noqa: B006
) -> Any:
    """The organizations the caller can see."""
    view = await organizations.list_organizations_view(
        db,
        caller,
        offset=offset,
        limit=limit,
        sorts=sorts,
        support_plan=supportPlan,
        product=product,
    )
    return render.organizations_page(view)


@router.get(
    "/organizations/{organizationId}",
    responses={200: {"model": platform.Organization}},
    operation_id="GetOrganization",
)
async def get_organization(
    caller: Caller, db: Db, organizationId: OrgId, isLookUpOnly: bool = False
) -> Any:
    """`isLookUpOnly` is accepted; the answer is the organization's metadata either way."""
    return render.organization(
        await organizations.get_organization_view(db, caller, organizationId)
    )


@router.post(
    "/organizations/{organizationId}",
    responses={200: {"model": platform.Organization}},
    operation_id="UpdateOrganization",
)
async def update_organization(
    caller: Caller, db: Db, organizationId: OrgId, body: platform.UpdateOrganizationRequest
) -> Any:
    fields = OrganizationFields(
        name=body.name, billing_email=body.billingEmail, is_scim_enabled=body.isScimEnabled
    )
    view = await organizations.update_organization_view(db, caller, organizationId, fields)
    return render.organization(view)
