"""POST /auth/simple/login: password sign-in that sets Unleash's session cookie.

A refused password raises SignInRefused from the domain (its count and audit event kept), and
the face's error table answers Unleash's 401 UnauthorizedError. The cookie is HttpOnly and
SameSite=Lax as Unleash sets it, and also Secure when Tenantry is reached over https
(TENANTRY_PUBLIC_URL), so that a browser never sends it in clear."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from tenantry.config import Settings
from tenantry.errors import Unauthenticated
from tenantry.faces.http import Db, JSONResponse, client_ip, face_router, security
from tenantry.faces.unleash import dialect as unleash_me
from tenantry.faces.unleash import render
from tenantry.faces.unleash.auth import COOKIE
from tenantry.identity import sessions

router = face_router(tags=["Auth"])


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Bounded like ECE's sign-in (and so checked as real Unicode: no lone surrogates).
    username: str = Field(max_length=320)
    password: str = Field(max_length=1024)


def secure_cookies(request: Request) -> bool:
    """Whether cookies get `Secure`: when people reach Tenantry over https."""
    settings: Settings = request.app.state.settings
    return settings.public_url.lower().startswith("https://")


@router.post("/login")
async def login(request: Request, db: Db, body: Login) -> Any:
    sec = security(request)
    outcome = await unleash_me.simple_login(
        db,
        sec.hasher,
        sec.policy,
        sec.limits,
        username=body.username,
        password=body.password,
        ip=client_ip(request),
    )
    if outcome is None:  # a session without a user, which a sign-in never mints: roll back
        raise Unauthenticated(sessions.REFUSED)
    response = JSONResponse(
        {
            **render.user_full(outcome.user),
            "deletedSessions": 0,
            "activeSessions": outcome.active_sessions,
        }
    )
    response.set_cookie(
        COOKIE,
        quote("s:" + outcome.minted.secret, safe=""),
        path="/",
        expires=outcome.minted.token.expires_at,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )
    return response
