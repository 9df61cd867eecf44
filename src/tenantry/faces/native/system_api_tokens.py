"""System API tokens (directory/system_api_tokens.py): instance-wide credentials of no user
holding one SYSTEM role, e.g. what Unleash clients know as an admin API token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from fastapi.responses import Response

from tenantry.directory import system_api_tokens
from tenantry.faces.http import BearerCaller, Db, face_router
from tenantry.faces.native import render, schemas
from tenantry.ids import ID_PATTERN

router = face_router(tags=["System API tokens"])
AnyId = Annotated[str, Path(pattern=ID_PATTERN)]
PATH = "/system/api-tokens"


@router.post(PATH, status_code=201)
async def create_system_api_token(
    caller: BearerCaller, db: Db, body: schemas.CreateSystemApiToken
) -> Any:
    """Mints a system API token; the secret is in the response once and never again."""
    made = await system_api_tokens.create_system_api_token(
        db, caller, role=body.role, name=body.name, expires_in_days=body.expiresInDays
    )
    return render.system_api_token(made.token, made.role, made.secret)


@router.get(PATH)
async def list_system_api_tokens(caller: BearerCaller, db: Db) -> Any:
    found = await system_api_tokens.list_system_api_tokens(db, caller)
    return {"tokens": [render.system_api_token(t.token, t.role) for t in found]}


@router.get(PATH + "/{tokenId}")
async def get_system_api_token(caller: BearerCaller, db: Db, tokenId: AnyId) -> Any:
    found = await system_api_tokens.get_system_api_token(db, caller, tokenId)
    return render.system_api_token(found.token, found.role)


@router.delete(PATH + "/{tokenId}", status_code=204)
async def revoke_system_api_token(caller: BearerCaller, db: Db, tokenId: AnyId) -> Response:
    await system_api_tokens.revoke_system_api_token(db, caller, tokenId)
    return Response(status_code=204)
