"""Native invite acceptance: POST /invites/accept with the secret from the invite link.

Unauthenticated on purpose (the secret is the credential); a bearer token is read when present,
since accepting for an existing account requires being signed in as that account.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import Field

from tenantry.clock import iso_z
from tenantry.config import Settings
from tenantry.directory import invite_accept
from tenantry.faces.http import Db, bearer_principal, client_ip, face_router, security
from tenantry.faces.native.schemas import Body
from tenantry.identity.principals import Principal, anonymous

router = face_router(tags=["Invites"])


class AcceptInvite(Body):
    secret: str = Field(min_length=1, max_length=256)
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    fullName: str | None = Field(default=None, max_length=256)


async def _caller_if_any(request: Request, db: Db) -> Principal:
    """anonymous() without an Authorization header; 401 for one that does not authenticate."""
    if "authorization" not in request.headers:
        return anonymous()
    return await bearer_principal(request, db)


MaybeCaller = Annotated[Principal, Depends(_caller_if_any)]


@router.post("/invites/accept")
async def accept_invite(request: Request, db: Db, caller: MaybeCaller, body: AcceptInvite) -> Any:
    """Accept an organization invite. For an account the invite created, choose its password
    (and optionally a full name): the answer carries a session token, as POST /auth/login does.
    For an existing account, send the secret only, signed in as that account. Unknown, expired,
    used and withdrawn invites all get the same 404."""
    settings: Settings = request.app.state.settings
    result = await invite_accept.accept_invite(
        db,
        caller,
        security(request),
        secret=body.secret,
        password=body.password,
        full_name=body.fullName,
        ip=client_ip(request),
        rate_per_ip=settings.invite_accept_rate_per_ip,
    )
    session = None
    if result.session is not None:
        token = result.session.token
        session = {
            "token": result.session.secret,
            "tokenType": "Bearer",
            "expiresAt": iso_z(token.expires_at) if token.expires_at else None,
            "maxExpiresAt": iso_z(token.max_expires_at) if token.max_expires_at else None,
            "userId": token.user_id,
        }
    return {
        "organizationId": result.organization_id,
        "userId": result.user_id,
        "role": result.role,
        "alreadyMember": result.already_member,
        "session": session,
    }
