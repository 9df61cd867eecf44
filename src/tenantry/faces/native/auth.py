"""Native sign-in, sessions, elevation, own tokens and account security."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import Response

from tenantry.clock import iso_z
from tenantry.directory import accounts, sign_in
from tenantry.errors import Invalid
from tenantry.faces.http import BearerCaller, Db, client_ip, face_router, security
from tenantry.faces.native import render, schemas
from tenantry.identity import personal_tokens, sessions
from tenantry.identity.tokens import Minted
from tenantry.ids import ID_PATTERN

router = face_router(tags=["Authentication"])
AnyId = Annotated[str, Path(pattern=ID_PATTERN)]


def _session_body(minted: Minted) -> dict[str, Any]:
    token = minted.token
    return {
        "token": minted.secret,
        "tokenType": "Bearer",
        "expiresAt": iso_z(token.expires_at) if token.expires_at else None,
        "maxExpiresAt": iso_z(token.max_expires_at) if token.max_expires_at else None,
        "userId": token.user_id,
    }


@router.post("/auth/login")
async def login(request: Request, db: Db, body: schemas.Login) -> Any:
    """Password sign-in → a session token. Unknown user, wrong password, locked, disabled or
    pending accounts all get the same 401 (SignInRefused, through the face's error table)."""
    sec = security(request)
    outcome = await sign_in.login(
        db,
        sec,
        username=body.username,
        password=body.password,
        ip=client_ip(request),
    )
    return _session_body(outcome.minted)


@router.post("/auth/logout", status_code=204)
async def logout(caller: BearerCaller, db: Db) -> Response:
    await sessions.logout(db, caller)
    return Response(status_code=204)


@router.post("/auth/refresh")
async def refresh(caller: BearerCaller, db: Db) -> Any:
    """Swap the session token for a new one (the old one stops working at once)."""
    return _session_body(await sessions.refresh(db, caller))


@router.post("/auth/elevate")
async def elevate(request: Request, caller: BearerCaller, db: Db, body: schemas.Elevate) -> Any:
    """Re-enter your password for elevated permissions (TENANTRY_ELEVATION_MINUTES); a wrong
    one is a 403 (ElevationRefused)."""
    sec = security(request)
    outcome = await sessions.elevate(
        db, sec.hasher, sec.limits, caller, body.password, client_ip(request)
    )
    return {"elevatedUntil": iso_z(outcome.until)}


@router.delete("/auth/elevate", status_code=204)
async def drop_elevation(caller: BearerCaller, db: Db) -> Response:
    await sessions.drop_elevation(db, caller)
    return Response(status_code=204)


@router.get("/me/tokens", tags=["Tokens"])
async def my_tokens(caller: BearerCaller, db: Db) -> Any:
    tokens = await personal_tokens.list_personal_tokens(db, caller, _own_id(caller))
    return {"tokens": [render.token(t) for t in tokens]}


@router.post("/me/tokens", status_code=201, tags=["Tokens"])
async def create_my_token(caller: BearerCaller, db: Db, body: schemas.CreateToken) -> Any:
    minted = await personal_tokens.create_personal_token(
        db, caller, _own_id(caller), name=body.name, expires_in_days=body.expiresInDays
    )
    return render.token(minted.token, minted.secret)


@router.delete("/me/tokens/{tokenId}", status_code=204, tags=["Tokens"])
async def revoke_my_token(caller: BearerCaller, db: Db, tokenId: AnyId) -> Response:
    await personal_tokens.revoke_own_token(db, caller, tokenId)
    return Response(status_code=204)


@router.put("/users/{userId}/password", status_code=204, tags=["Users"])
async def set_password(
    request: Request, caller: BearerCaller, db: Db, userId: AnyId, body: schemas.SetPassword
) -> Response:
    await accounts.set_password(
        db, security(request).hasher, caller, userId, body.password, body.currentPassword
    )
    return Response(status_code=204)


@router.delete("/users/{userId}/sessions", tags=["Users"])
async def end_sessions(caller: BearerCaller, db: Db, userId: AnyId) -> Any:
    """End every session of the user at once (their personal tokens stay)."""
    return {"revoked": await sessions.revoke_sessions(db, caller, userId)}


@router.put("/users/{userId}/system-role", status_code=204, tags=["Users"])
async def set_system_role(
    caller: BearerCaller, db: Db, userId: AnyId, body: schemas.SystemRole
) -> Response:
    await accounts.set_system_role(db, caller, userId, body.role)
    return Response(status_code=204)


def _own_id(caller: BearerCaller) -> str:
    if caller.user is None or caller.token is None or caller.token.kind == "api":
        raise Invalid("personal tokens belong to users; use a user's session or token")
    return caller.user.id
