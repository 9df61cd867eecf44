"""/api/admin/user/tokens: the caller's personal access tokens."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from tenantry.faces.http import Db, JSONResponse, face_router
from tenantry.faces.unleash import pat_rules as unleash_pats
from tenantry.faces.unleash import render
from tenantry.faces.unleash.auth import Caller
from tenantry.faces.unleash.bodies import CreatePat, json_object, parse
from tenantry.faces.unleash.users import user_id

router = face_router(prefix="/user/tokens", tags=["Personal access tokens"])


def _pat(pat: unleash_pats.Pat) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": unleash_pats.pat_number(pat.token),
        "description": pat.token.name,
        "expiresAt": render.ts(pat.token.expires_at),
        "userId": pat.user.seq,
        "createdAt": render.ts(pat.token.created_at),
        "seenAt": render.ts(pat.token.last_used_at),
    }
    if pat.secret is not None:
        body["secret"] = pat.secret
    return body


@router.get("")
async def list_pats(caller: Caller, db: Db) -> Any:
    return {"pats": [_pat(p) for p in await unleash_pats.list_pats(db, caller)]}


@router.post("", status_code=201)
async def create_pat(request: Request, caller: Caller, db: Db) -> Any:
    pat = await unleash_pats.create_pat(db, caller, parse(CreatePat, await json_object(request)))
    return JSONResponse(_pat(pat), status_code=201)


@router.delete("/{id}", response_class=Response)  # Unleash answers 200 with no body
async def delete_pat(caller: Caller, db: Db, id: str) -> Response:
    await unleash_pats.delete_pat(db, caller, user_id(id))
    return Response(status_code=200)
