"""Native self-service e-mail change: request it (the link goes to the new address), confirm it;
and the use of a password reset link an administrator had made (directory.password_reset).

The mail is sent by a background task after the response, so after the commit: a rolled-back
request mails no one (as with invites, faces/astro/invites.py). Confirming is unauthenticated
on purpose: the secret from the link is the credential, and the link may be opened anywhere.
"""

from __future__ import annotations

from typing import Any

from fastapi import BackgroundTasks, Request
from pydantic import Field

from tenantry.clock import iso_z
from tenantry.config import Settings
from tenantry.directory import email_change, password_reset
from tenantry.faces.http import BearerCaller, Db, face_router, security
from tenantry.faces.native import render
from tenantry.faces.native.schemas import Body
from tenantry.mail import Mailer, deliver

router = face_router(tags=["Users"])


class ChangeEmail(Body):
    email: str = Field(min_length=1, max_length=320)


class ConfirmEmail(Body):
    secret: str = Field(min_length=1, max_length=256)


class ResetPassword(Body):
    secret: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)


@router.post("/users/me/email", status_code=202)
async def request_email_change(
    request: Request, caller: BearerCaller, db: Db, body: ChangeEmail, tasks: BackgroundTasks
) -> Any:
    """Mails a confirmation link to the new address; the account keeps its current address
    until the link is used (POST /email/confirm)."""
    settings: Settings = request.app.state.settings
    mailer: Mailer = request.app.state.mailer
    pending = await email_change.request_email_change(
        db,
        caller,
        body.email,
        public_url=settings.public_url,
        limiter=security(request).limits.limiter,
    )
    tasks.add_task(deliver, mailer, pending.mail)
    return {"pendingEmail": pending.address, "expiresAt": iso_z(pending.expires_at)}


@router.post("/password/reset")
async def reset_password(request: Request, db: Db, body: ResetPassword) -> Any:
    """Sets the password of the account a reset link was made for (directory.password_reset);
    its every session ends. Unknown, expired and used links all get the same 404."""
    user = await password_reset.reset_password(
        db, security(request).hasher, body.secret, body.password, security(request).policy
    )
    return render.user(user)


@router.post("/email/confirm")
async def confirm_email_change(db: Db, body: ConfirmEmail) -> Any:
    """Makes the pending address the account's, verified. Unknown, expired and used links all
    get the same 404."""
    return render.user(await email_change.confirm_email_change(db, body.secret))
