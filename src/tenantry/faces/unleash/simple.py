"""POST /auth/simple/login: password sign-in that sets Unleash's session cookie.

The body is Unleash's loginSchema (JSON, both strings, nothing else). A refused password raises
SignInRefused from the domain (its count and audit event kept), and the face's error table
answers Unleash's `401 PasswordMismatch` ("The combination of password and username you
provided is invalid. ..."); a name or password no account can have (empty, too long) gets
the same answer. The cookie is HttpOnly and SameSite=Lax as Unleash sets it, and also Secure
when Tenantry is reached over https (TENANTRY_PUBLIC_URL), so that a browser never sends it
in clear."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request

from tenantry.config import Settings
from tenantry.errors import Invalid
from tenantry.faces.http import Db, JSONResponse, client_ip, face_router, security
from tenantry.faces.unleash import dialect as unleash_me
from tenantry.faces.unleash import render
from tenantry.faces.unleash.auth import COOKIE
from tenantry.faces.unleash.bodies import Login, json_object, parse
from tenantry.faces.unleash.errors import PasswordMismatch
from tenantry.identity import sessions

router = face_router(tags=["Auth"])


def secure_cookies(request: Request) -> bool:
    """Whether cookies get `Secure`: when people reach Tenantry over https."""
    settings: Settings = request.app.state.settings
    return settings.public_url.lower().startswith("https://")


@router.post("/login")
async def login(request: Request, db: Db) -> Any:
    body = parse(Login, await json_object(request))
    sec = security(request)
    try:
        outcome = await unleash_me.simple_login(
            db,
            sec,
            username=body.username,
            password=body.password,
            ip=client_ip(request),
        )
    except Invalid as refused:  # a name or password no account has: Unleash's one answer
        named = {f.field for f in refused.fields}
        if named and named <= {"username", "password"}:
            raise PasswordMismatch(sessions.REFUSED) from refused
        raise
    if outcome is None:  # a session without a user, which a sign-in never mints: roll back
        raise PasswordMismatch(sessions.REFUSED)
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
