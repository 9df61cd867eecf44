"""An organization's SCIM tokens (directory/scim_tokens.py): its identity provider's key to
the SCIM face, /scim/v2."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from fastapi.responses import Response

from tenantry.directory import scim_tokens
from tenantry.faces.http import BearerCaller, Db, face_router
from tenantry.faces.native import render, schemas
from tenantry.ids import ID_PATTERN

router = face_router(tags=["SCIM tokens"])
AnyId = Annotated[str, Path(pattern=ID_PATTERN)]


@router.post("/organizations/{organizationId}/scim-tokens", status_code=201)
async def create_scim_token(
    caller: BearerCaller, db: Db, organizationId: AnyId, body: schemas.CreateScimToken
) -> Any:
    """Mints a SCIM token; the secret is in the response once and never again."""
    minted = await scim_tokens.create_scim_token(
        db,
        caller,
        organizationId,
        default_role=body.defaultRole,
        expires_in_days=body.expiresInDays,
        name=body.name,
    )
    return render.scim_token(minted.token, minted.secret)


@router.get("/organizations/{organizationId}/scim-tokens")
async def list_scim_tokens(caller: BearerCaller, db: Db, organizationId: AnyId) -> Any:
    found = await scim_tokens.list_scim_tokens(db, caller, organizationId)
    return {"tokens": [render.scim_token(t) for t in found]}


@router.delete("/organizations/{organizationId}/scim-tokens/{tokenId}", status_code=204)
async def revoke_scim_token(
    caller: BearerCaller, db: Db, organizationId: AnyId, tokenId: AnyId
) -> Response:
    await scim_tokens.revoke_scim_token(db, caller, organizationId, tokenId)
    return Response(status_code=204)
