"""Astro invites: invite an e-mail address to an organization, withdraw an invite.

The invite link is e-mailed by a background task attached to the response. It runs after the
response is sent, and the request's transaction commits before that (the `Db` dependency has
function scope: it closes as soon as the route returns). So a rolled-back invite never mails
anyone: if the commit fails, an error response replaces this one and the task is dropped.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, Request
from fastapi.responses import Response

from tenantry.config import Settings
from tenantry.directory import invites
from tenantry.faces.astro import render_iam, schemas, schemas_iam
from tenantry.faces.astro.deps import Caller, InviteId, OrgId
from tenantry.faces.http import Db, face_router
from tenantry.mail import Mailer, deliver

router = face_router(tags=["Invite"], responses=schemas.ERRORS)


def _invite_ttl_days(request: Request) -> int:
    settings: Settings = request.app.state.settings
    return settings.invite_ttl_days


TtlDays = Annotated[int, Depends(_invite_ttl_days)]


class Outbox:
    """Sends an invite's e-mail once the response (and so the commit) is done."""

    def __init__(self, request: Request, tasks: BackgroundTasks) -> None:
        self._mailer: Mailer = request.app.state.mailer
        self._settings: Settings = request.app.state.settings
        self._tasks = tasks

    def send_invite(self, created: invites.CreatedInvite) -> None:
        mail = invites.invite_mail(created, self._settings.public_url)
        self._tasks.add_task(deliver, self._mailer, mail)


@router.post(
    "/organizations/{organizationId}/invites",
    responses={200: {"model": schemas_iam.Invite}},
    operation_id="CreateUserInvite",
)
async def create_user_invite(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    body: schemas_iam.CreateUserInviteRequest,
    ttl_days: TtlDays,
    outbox: Annotated[Outbox, Depends()],
) -> Any:
    """Invites an e-mail address with an organization role and e-mails the invitee the invite
    link. An address no user has yet gets a PENDING user, who joins the organization when the
    invite is accepted."""
    created = await invites.create_invite(
        db, caller, organizationId, body.inviteeEmail, body.role.value, ttl_days=ttl_days
    )
    outbox.send_invite(created)
    return render_iam.invite(created.view)


@router.delete(
    "/organizations/{organizationId}/invites/{inviteId}",
    status_code=204,
    operation_id="DeleteUserInvite",
)
async def delete_user_invite(
    caller: Caller, db: Db, organizationId: OrgId, inviteId: InviteId
) -> Response:
    await invites.delete_invite(db, caller, organizationId, inviteId)
    return Response(status_code=204)
