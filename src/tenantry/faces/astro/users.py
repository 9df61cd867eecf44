"""Astro users: the caller, an organization's users, and their roles."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Query, Request

from tenantry.directory import me, members, whoami
from tenantry.directory.members import DagRole, MemberQuery, RoleSet
from tenantry.faces import hot
from tenantry.faces.astro import render, schemas
from tenantry.faces.astro.deps import Caller, Limit, Offset, OrgId, UserId
from tenantry.faces.astro.errors import unreachable_is_forbidden
from tenantry.faces.hot import HotAnswer
from tenantry.faces.http import (
    Db,
    RawJSON,
    bearer_secret,
    face_router,
    read_transaction,
)
from tenantry.identity.principals import Principal

router = face_router(tags=["Users"], responses=schemas.ERRORS)
SortItem = Annotated[str, Query(pattern=r"^(id|username|fullName|createdAt|updatedAt):(asc|desc)$")]


@router.get("/users/self", responses={200: {"model": schemas.SelfUser}}, operation_id="GetSelfUser")
async def get_self_user(request: Request, caller: Caller, createIfNotExist: bool = False) -> Any:
    """The caller: profile, roles across all scopes, pending invites and feature flags.
    `createIfNotExist` is accepted; a Tenantry token always belongs to an existing user."""
    async with read_transaction(request) as db:
        found = await whoami.view_of(db, caller)
    body, _ = self_body(request, caller, found)
    return RawJSON(body)


async def hot_self(request: Request) -> HotAnswer | None:
    """GET /v1/users/self on the hot path (faces/hot.py)."""
    return await hot.answer(request, bearer_secret(request), self_body)


def self_body(
    _request: Request, caller: Principal, found: whoami.CallerView
) -> tuple[bytes, datetime | None]:
    """The body, and when it stops being true by itself (a pending invite expiring)."""
    view = me.me_of(caller, found.invites, found.feature_flags)
    expiry = min((i.expires_at for i in view.invites), default=None)
    return orjson.dumps(render.self_user(view)), expiry


@router.get(
    "/organizations/{organizationId}/users",
    responses={200: {"model": schemas.UsersPaginated}},
    operation_id="ListUsers",
)
async def list_users(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    workspaceId: Annotated[str | None, Query(max_length=64)] = None,
    deploymentId: Annotated[str | None, Query(max_length=64)] = None,
    dagId: Annotated[str | None, Query(min_length=1, max_length=250)] = None,
    dagTags: Annotated[
        list[Annotated[str, Query(min_length=1, max_length=250)]], Query(max_length=100)
    ] = [],  # noqa: B006
    offset: Offset = 0,
    limit: Limit = 20,
    sorts: Annotated[list[SortItem], Query(max_length=10)] = [],  # noqa: B006
) -> Any:
    query = MemberQuery(
        workspaceId, deploymentId, dagId, tuple(dagTags), offset, limit, tuple(sorts)
    )
    with unreachable_is_forbidden():
        page = await members.list_members(db, caller, organizationId, query)
    return render.members_page(page)


@router.get(
    "/organizations/{organizationId}/users/{userId}",
    responses={200: {"model": schemas.User}},
    operation_id="GetUser",
)
async def get_user(caller: Caller, db: Db, organizationId: OrgId, userId: UserId) -> Any:
    return render.member(await members.get_member(db, caller, organizationId, userId))


@router.post(
    "/organizations/{organizationId}/users/{userId}/roles",
    responses={200: {"model": schemas.SubjectRoles}},
    operation_id="UpdateUserRoles",
)
async def update_user_roles(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    userId: UserId,
    body: schemas.UpdateUserRolesRequest,
) -> Any:
    """Replaces the user's roles in the organization (a non-member given an
    organizationRole joins it)."""
    roles = RoleSet(
        organization_role=body.organizationRole.value if body.organizationRole else None,
        workspace_roles=[(w.workspaceId, w.role.value) for w in body.workspaceRoles],
        deployment_roles=[(d.deploymentId, d.role) for d in body.deploymentRoles],
        dag_roles=[DagRole(d.deploymentId, d.role, d.dagId, d.dagTag) for d in body.dagRoles],
    )
    result = await members.replace_user_roles(db, caller, organizationId, userId, roles)
    return render.role_set(result)
