"""POST /auth/simple/login: password sign-in that sets Unleash's session cookie."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from tenantry.errors import Unauthenticated
from tenantry.faces.http import Db, JSONResponse, client_ip, face_router, security
from tenantry.faces.unleash import dialect as unleash_me
from tenantry.faces.unleash import errors, render
from tenantry.faces.unleash.auth import COOKIE
from tenantry.identity import sessions

router = face_router(tags=["Auth"])


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Bounded like ECE's sign-in (and so checked as real Unicode: no lone surrogates).
    username: str = Field(max_length=320)
    password: str = Field(max_length=1024)


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
    if outcome is None:  # returned, not raised: the failure count must commit
        return errors.render(request, 401, Unauthenticated(sessions.REFUSED))
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
    )
    return response
