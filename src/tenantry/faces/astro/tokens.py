"""Astro API tokens of an organization: list, create, read, rename, replace roles, rotate,
delete. Who may do what is documented in tenantry.directory.api_tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from fastapi.responses import Response

from tenantry.directory import api_tokens
from tenantry.directory.api_tokens import ApiTokenQuery, NewApiToken, TokenRole
from tenantry.faces.astro import render_tokens, schemas, schemas_tokens
from tenantry.faces.astro.deps import Caller, Limit, Offset, OrgId
from tenantry.faces.http import Db, face_router
from tenantry.ids import ID_PATTERN

router = face_router(tags=["ApiToken"], responses=schemas.ERRORS)
TokenId = Annotated[
    str,
    Path(
        pattern=ID_PATTERN,
        description="The API token's ID.",
        examples=["clm8q7f6q000008lcgyougpsk"],
    ),
]
FilterId = Annotated[str | None, Query(pattern=ID_PATTERN)]
TokenSort = Annotated[
    str, Query(pattern=r"^(name|description|createdAt|updatedAt|tokenStartAt):(asc|desc)$")
]
TOKENS = "/organizations/{organizationId}/tokens"
TOKEN = TOKENS + "/{tokenId}"


@router.get(
    TOKENS,
    responses={200: {"model": schemas_tokens.ApiTokensPaginated}},
    operation_id="ListApiTokens",
)
async def list_api_tokens(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    workspaceId: FilterId = None,
    deploymentId: FilterId = None,
    includeOnlyOrganizationTokens: bool = False,
    offset: Offset = 0,
    limit: Limit = 20,
    sorts: Annotated[list[TokenSort], Query(max_length=10)] = [],  # noqa: B006
) -> Any:
    """The organization's API tokens; `workspaceId` (`deploymentId`) keeps those holding a
    role in that workspace (deployment), `includeOnlyOrganizationTokens` the ORGANIZATION
    tokens. The secrets are never listed."""
    query = ApiTokenQuery(
        workspaceId, deploymentId, includeOnlyOrganizationTokens, offset, limit, tuple(sorts)
    )
    page = await api_tokens.list_api_tokens(db, caller, organizationId, query)
    return render_tokens.api_tokens_page(page)


@router.post(
    TOKENS, responses={200: {"model": schemas_tokens.ApiToken}}, operation_id="CreateApiToken"
)
async def create_api_token(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    body: schemas_tokens.CreateApiTokenRequest,
) -> Any:
    """A token with one role at its scope (the organization, or the workspace or deployment
    `entityId`), which the caller must hold. The answer's `token` is the secret, shown once."""
    new = NewApiToken(
        name=body.name,
        type=body.type.value,
        role=body.role,
        entity_id=body.entityId,
        description=body.description or "",
        expiry_days=body.tokenExpiryPeriodInDays,
    )
    return render_tokens.api_token(
        await api_tokens.create_api_token(db, caller, organizationId, new)
    )


@router.get(TOKEN, responses={200: {"model": schemas_tokens.ApiToken}}, operation_id="GetApiToken")
async def get_api_token(caller: Caller, db: Db, organizationId: OrgId, tokenId: TokenId) -> Any:
    return render_tokens.api_token(
        await api_tokens.get_api_token(db, caller, organizationId, tokenId)
    )


@router.post(
    TOKEN, responses={200: {"model": schemas_tokens.ApiToken}}, operation_id="UpdateApiToken"
)
async def update_api_token(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    tokenId: TokenId,
    body: schemas_tokens.UpdateApiTokenRequest,
) -> Any:
    """Renames the token; without `description` the current one is kept."""
    view = await api_tokens.update_api_token(
        db, caller, organizationId, tokenId, body.name, body.description
    )
    return render_tokens.api_token(view)


@router.delete(TOKEN, status_code=204, operation_id="DeleteApiToken")
async def delete_api_token(
    caller: Caller, db: Db, organizationId: OrgId, tokenId: TokenId
) -> Response:
    """The token's secret stops working at once."""
    await api_tokens.delete_api_token(db, caller, organizationId, tokenId)
    return Response(status_code=204)


@router.post(
    f"{TOKEN}/roles",
    responses={200: {"model": schemas.SubjectRoles}},
    operation_id="UpdateApiTokenRoles",
)
async def update_api_token_roles(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    tokenId: TokenId,
    body: schemas_tokens.UpdateApiTokenRolesRequest,
) -> Any:
    """Replaces the token's roles; the caller must hold each of them."""
    roles = [TokenRole(r.entityType.value, r.entityId, r.role) for r in body.roles]
    result = await api_tokens.replace_api_token_roles(db, caller, organizationId, tokenId, roles)
    return render_tokens.api_token_roles(result)


@router.post(
    f"{TOKEN}/rotate",
    responses={200: {"model": schemas_tokens.ApiToken}},
    operation_id="RotateApiToken",
)
async def rotate_api_token(caller: Caller, db: Db, organizationId: OrgId, tokenId: TokenId) -> Any:
    """A new secret (in `token`) for the same token; the previous one is refused at once."""
    return render_tokens.api_token(
        await api_tokens.rotate_api_token(db, caller, organizationId, tokenId)
    )
