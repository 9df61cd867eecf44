"""Who is calling the ece face: `ApiKey <key>`, `Bearer <token>` or HTTP Basic."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Request

from tenantry.errors import Invalid, Unauthenticated
from tenantry.faces.http import Db, client_ip, principal_from_secret, security
from tenantry.identity import sessions
from tenantry.identity.principals import Principal

REFUSED = "the supplied credentials are invalid"


def _basic_pair(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Unauthenticated(REFUSED) from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthenticated(REFUSED)
    return username, password


def token_secret(request: Request) -> str | None:
    """The secret of `ApiKey <key>` or `Bearer <token>`; None for anything else."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() in ("apikey", "bearer") and value else None


async def ece_principal(request: Request, db: Db) -> Principal:
    """401 (root.unauthorized) when the credential is absent, unknown or refused."""
    secret = token_secret(request)
    if secret is not None:
        return await principal_from_secret(request, db, secret)
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    kind = scheme.lower()
    if kind != "basic" or not value:
        raise Unauthenticated("missing credentials (ApiKey, Bearer or Basic)")
    username, password = _basic_pair(value)
    sec = security(request)
    try:
        principal = await sessions.authenticate_password(
            db,
            sec.hasher,
            sec.policy,
            sec.limits,
            username=username,
            password=password,
            ip=client_ip(request),
        )
    except Invalid:
        raise Unauthenticated(REFUSED) from None
    if principal is None:
        # A refused password counts towards the lockout: commit the count now, since the
        # 401 raised next rolls the request's transaction back.
        await db.commit()
        raise Unauthenticated(REFUSED)
    return principal


Caller = Annotated[Principal, Depends(ece_principal)]
