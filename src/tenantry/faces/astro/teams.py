"""Astro teams: teams of an organization, their members and their roles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import Response

from tenantry.directory import teams
from tenantry.directory.members import DagRole, RoleSet
from tenantry.directory.teams import NewTeam, TeamMemberQuery, TeamQuery
from tenantry.faces.astro import render_iam, schemas, schemas_iam
from tenantry.faces.astro.deps import Caller, OrgId, TeamId, UserId
from tenantry.faces.http import Db, face_router

router = face_router(tags=["Team"], responses=schemas.ERRORS)
TeamSort = Annotated[str, Query(pattern=r"^(name|description|createdAt|updatedAt):(asc|desc)$")]
MemberSort = Annotated[str, Query(pattern=r"^(userId|fullName|username|createdAt):(asc|desc)$")]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=0, le=1000)]
TEAM = "/organizations/{organizationId}/teams/{teamId}"


@router.get(
    "/organizations/{organizationId}/teams",
    responses={200: {"model": schemas_iam.TeamsPaginated}},
    operation_id="ListTeams",
)
async def list_teams(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    names: Annotated[
        list[Annotated[str, Query(min_length=1, max_length=256)]], Query(max_length=100)
    ] = [],  # noqa: B006
    offset: Offset = 0,
    limit: Limit = 20,
    sorts: Annotated[list[TeamSort], Query(max_length=10)] = [],  # noqa: B006
) -> Any:
    query = TeamQuery(tuple(names), offset, limit, tuple(sorts))
    return render_iam.teams_page(await teams.list_teams(db, caller, organizationId, query))


@router.post(
    "/organizations/{organizationId}/teams",
    responses={200: {"model": schemas_iam.Team}},
    operation_id="CreateTeam",
)
async def create_team(
    caller: Caller, db: Db, organizationId: OrgId, body: schemas_iam.CreateTeamRequest
) -> Any:
    """Members must already belong to the organization; the organization role defaults to
    ORGANIZATION_MEMBER."""
    new = NewTeam(
        name=body.name,
        description=body.description,
        member_ids=body.memberIds,
        organization_role=body.organizationRole.value if body.organizationRole else None,
    )
    return render_iam.team(await teams.create_team(db, caller, organizationId, new))


@router.get(TEAM, responses={200: {"model": schemas_iam.Team}}, operation_id="GetTeam")
async def get_team(caller: Caller, db: Db, organizationId: OrgId, teamId: TeamId) -> Any:
    return render_iam.team(await teams.get_team(db, caller, organizationId, teamId))


@router.post(TEAM, responses={200: {"model": schemas_iam.Team}}, operation_id="UpdateTeam")
async def update_team(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    teamId: TeamId,
    body: schemas_iam.UpdateTeamRequest,
) -> Any:
    view = await teams.update_team(db, caller, organizationId, teamId, body.name, body.description)
    return render_iam.team(view)


@router.delete(TEAM, status_code=204, operation_id="DeleteTeam")
async def delete_team(caller: Caller, db: Db, organizationId: OrgId, teamId: TeamId) -> Response:
    """Members lose every permission the team gave them."""
    await teams.delete_team(db, caller, organizationId, teamId)
    return Response(status_code=204)


@router.get(
    f"{TEAM}/members",
    responses={200: {"model": schemas_iam.TeamMembersPaginated}},
    operation_id="ListTeamMembers",
)
async def list_team_members(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    teamId: TeamId,
    offset: Offset = 0,
    limit: Limit = 20,
    sorts: Annotated[list[MemberSort], Query(max_length=10)] = [],  # noqa: B006
) -> Any:
    query = TeamMemberQuery(offset, limit, tuple(sorts))
    page = await teams.list_team_members(db, caller, organizationId, teamId, query)
    return render_iam.team_members_page(page)


@router.post(f"{TEAM}/members", status_code=204, operation_id="AddTeamMembers")
async def add_team_members(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    teamId: TeamId,
    body: schemas_iam.AddTeamMembersRequest,
) -> Response:
    """Each id must be a member of the organization; ids already in the team are kept."""
    await teams.add_team_members(db, caller, organizationId, teamId, body.memberIds)
    return Response(status_code=204)


@router.delete(f"{TEAM}/members/{{memberId}}", status_code=204, operation_id="RemoveTeamMember")
async def remove_team_member(
    caller: Caller, db: Db, organizationId: OrgId, teamId: TeamId, memberId: UserId
) -> Response:
    await teams.remove_team_member(db, caller, organizationId, teamId, memberId)
    return Response(status_code=204)


@router.post(
    f"{TEAM}/roles",
    responses={200: {"model": schemas.SubjectRoles}},
    operation_id="UpdateTeamRoles",
)
async def update_team_roles(
    caller: Caller,
    db: Db,
    organizationId: OrgId,
    teamId: TeamId,
    body: schemas_iam.UpdateTeamRolesRequest,
) -> Any:
    """Replaces the team's roles; its members' permissions change at once."""
    roles = RoleSet(
        organization_role=body.organizationRole.value,
        workspace_roles=[(w.workspaceId, w.role.value) for w in body.workspaceRoles],
        deployment_roles=[(d.deploymentId, d.role) for d in body.deploymentRoles],
        dag_roles=[DagRole(d.deploymentId, d.role, d.dagId, d.dagTag) for d in body.dagRoles],
    )
    result = await teams.replace_team_roles(db, caller, organizationId, teamId, roles)
    return render_iam.team_roles(result)
