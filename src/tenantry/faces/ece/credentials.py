"""Who is calling the ece face: `ApiKey <key>`, `Bearer <token>` or HTTP Basic, read from
the request's one Authorization header (faces/credentials.py)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Request

from tenantry.errors import Invalid, Unauthenticated
from tenantry.faces.credentials import scheme_and_value
from tenantry.faces.ece.errors import BASIC_REFUSED as REFUSED
from tenantry.faces.http import Db, client_ip, principal_from_secret, security
from tenantry.identity import sessions
from tenantry.identity.principals import Principal


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
    scheme, value = scheme_and_value(request.scope)
    return value if scheme in ("apikey", "bearer") and value else None


async def ece_principal(request: Request, db: Db) -> Principal:
    """401 (root.unauthorized) when the credential is absent, unknown or refused. A refused
    password is counted and audited like any failed sign-in: `authenticate_password` raises
    a refusal that keeps those writes (the face's error table renders it)."""
    scheme, value = scheme_and_value(request.scope)
    if scheme in ("apikey", "bearer") and value:
        return await principal_from_secret(request, db, value)
    if scheme != "basic" or not value:
        raise Unauthenticated("missing credentials (ApiKey, Bearer or Basic)")
    username, password = _basic_pair(value)
    sec = security(request)
    try:
        return await sessions.authenticate_password(
            db,
            sec.hasher,
            sec.policy,
            sec.limits,
            username=username,
            password=password,
            ip=client_ip(request),
        )
    except Invalid:  # a username or password of impossible length: nothing was counted
        raise Unauthenticated(REFUSED) from None


Caller = Annotated[Principal, Depends(ece_principal)]
