"""Astro invites: invite an e-mail address to an organization, withdraw an invite."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from tenantry.config import Settings
from tenantry.directory import invites
from tenantry.faces.astro import render_iam, schemas, schemas_iam
from tenantry.faces.astro.deps import Caller, InviteId, OrgId
from tenantry.faces.http import Db

router = APIRouter(tags=["Invite"], responses=schemas.ERRORS)


def _invite_ttl_days(request: Request) -> int:
    settings: Settings = request.app.state.settings
    return settings.invite_ttl_days


TtlDays = Annotated[int, Depends(_invite_ttl_days)]


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
) -> Any:
    """Invites an e-mail address with an organization role. An address no user has yet gets
    a PENDING user, who joins the organization when the invite is accepted."""
    created = await invites.create_invite(
        db, caller, organizationId, body.inviteeEmail, body.role.value, ttl_days=ttl_days
    )
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
