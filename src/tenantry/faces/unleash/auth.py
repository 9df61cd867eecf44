"""Unleash's credentials: the raw token as the whole Authorization value, `Bearer <token>`,
or the `unleash-session` cookie set by /auth/simple/login."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Request

from tenantry.faces.http import Db, principal_from_secret
from tenantry.faces.unleash.errors import AuthenticationRequired
from tenantry.identity.principals import Principal

COOKIE = "unleash-session"


def presented_secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "").strip()
    if header:
        scheme, _, rest = header.partition(" ")
        if scheme.lower() == "bearer" and rest.strip():
            return rest.strip()
        return header
    cookie = request.cookies.get(COOKIE)
    if cookie:
        value = unquote(cookie)
        return value[2:] if value.startswith("s:") else value
    return None


async def unleash_principal(request: Request, db: Db) -> Principal:
    secret = presented_secret(request)
    if secret is None:
        raise AuthenticationRequired("no credential")
    return await principal_from_secret(request, db, secret)


Caller = Annotated[Principal, Depends(unleash_principal)]
