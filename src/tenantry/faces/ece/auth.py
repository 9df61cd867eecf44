"""ECE sign-in: _login, _logout, _refresh, the caller's authentication info and methods."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from tenantry.directory import sign_in
from tenantry.faces.ece import elevation as ece_sessions
from tenantry.faces.ece.credentials import Caller
from tenantry.faces.ece.errors import part
from tenantry.faces.ece.render import elevated, ts
from tenantry.faces.http import Db, client_ip, face_router, security
from tenantry.identity import sessions
from tenantry.identity.tokens import Minted

router = face_router(tags=["Authentication"])
REFRESH_URL = "/api/v1/users/auth/_refresh"


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    username: str = Field(max_length=320)
    password: str = Field(max_length=1024)


def token_body(minted: Minted) -> dict[str, Any]:
    token = minted.token
    expiry = token.expires_at or token.max_expires_at
    assert expiry is not None  # sessions always expire
    return {"token": minted.secret, "session_expiration_time": ts(expiry)}


@router.post("/users/auth/_login", operation_id="login")
async def login(request: Request, db: Db, body: LoginRequest) -> Any:
    """Username and password → a bearer token; every refusal is the same 401 (SignInRefused,
    worded by the face's error table)."""
    sec = security(request)
    outcome = await sign_in.login(
        db,
        sec,
        username=body.username,
        password=body.password,
        ip=client_ip(request),
    )
    return token_body(outcome.minted)


@router.post("/users/auth/_logout", operation_id="logout")
async def logout(caller: Caller, db: Db) -> Any:
    """Only a session logs out (an API key is deleted instead): any other credential is
    ECE's 401 root.unauthorized (the error table's "session" part)."""
    with part("session"):
        await sessions.logout(db, caller)
    return {}


@router.post("/users/auth/_refresh", operation_id="refresh-token")
async def refresh(caller: Caller, db: Db) -> Any:
    with part("session"):
        return token_body(await sessions.refresh(db, caller))


class ElevatePermissionsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    token: str = Field(max_length=1024)


@router.post("/users/auth/_elevate", operation_id="enable-elevated-permissions")
async def elevate(request: Request, caller: Caller, db: Db, body: ElevatePermissionsRequest) -> Any:
    """Re-enter your password (as `token`) for elevated permissions; a new token comes back.
    A wrong password is ECE's 400 authc.invalid_token (ElevationRefused, in the error table)."""
    sec = security(request)
    minted = await ece_sessions.elevate(
        db, sec.hasher, sec.limits, caller, body.token, client_ip(request)
    )
    return token_body(minted)


@router.delete("/users/auth/_elevate", operation_id="disable-elevated-permissions")
async def drop_elevation(caller: Caller, db: Db) -> Any:
    return token_body(await ece_sessions.drop(db, caller))


@router.get("/users/auth", operation_id="get-authentication-info")
async def authentication_info(caller: Caller) -> Any:
    state = elevated(caller.elevated_until)
    body: dict[str, Any] = {
        "has_elevated_permissions": state["enabled"],
        "refresh_token_url": REFRESH_URL,
    }
    if "expires_at" in state:
        body["elevated_permissions_expire_at"] = state["expires_at"]
    token = caller.token
    if token is not None and token.expires_at is not None:
        body["expires_at"] = ts(token.expires_at)
    return body


@router.get("/users/auth/methods", operation_id="methods")
async def methods() -> Any:
    """Password sign-in only: this directory federates no SAML or OpenID provider here."""
    return {"password": True, "saml": False, "openid": False, "sso_methods": []}
