"""Astro IAM request bodies for invites, custom roles and teams, and (for the OpenAPI document
only) their response shapes, as iam-v1beta1 and astro-v1.md define them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from tenantry.faces.astro.schemas import (
    BasicSubjectProfile as BasicSubjectProfile,
)
from tenantry.faces.astro.schemas import (
    Body,
    DagRole,
    DeploymentRole,
    OrganizationRole,
    WorkspaceRole,
)

ID_LIST = 1000


class CustomRoleScope(StrEnum):
    """Astro's spec lists DEPLOYMENT; Tenantry also keeps custom roles at DAG scope (v1)."""

    DEPLOYMENT = "DEPLOYMENT"
    DAG = "DAG"


class RoleScopeFilter(StrEnum):
    ORGANIZATION = "ORGANIZATION"
    WORKSPACE = "WORKSPACE"
    DEPLOYMENT = "DEPLOYMENT"
    DAG = "DAG"


# --- requests --------------------------------------------------------------------------------


class CreateUserInviteRequest(Body):
    inviteeEmail: str = Field(max_length=320)
    role: OrganizationRole


class CreateCustomRoleRequest(Body):
    name: str = Field(min_length=1, max_length=128)
    description: str | None = Field(default=None, max_length=2048)
    permissions: list[str] = Field(min_length=1, max_length=500)
    restrictedWorkspaceIds: list[str] = Field(default_factory=list, max_length=ID_LIST)
    scopeType: CustomRoleScope


class UpdateCustomRoleRequest(Body):
    name: str = Field(min_length=1, max_length=128)
    description: str | None = Field(default=None, max_length=2048)
    permissions: list[str] = Field(min_length=1, max_length=500)
    restrictedWorkspaceIds: list[str] | None = Field(default=None, max_length=ID_LIST)


class CreateTeamRequest(Body):
    name: str = Field(min_length=1, max_length=256)
    description: str = Field(default="", max_length=2048)
    memberIds: list[str] = Field(default_factory=list, max_length=ID_LIST)
    organizationRole: OrganizationRole | None = None


class UpdateTeamRequest(Body):
    name: str = Field(min_length=1, max_length=256)
    description: str | None = Field(default=None, max_length=2048)


class AddTeamMembersRequest(Body):
    memberIds: list[str] = Field(min_length=1, max_length=ID_LIST)


class UpdateTeamRolesRequest(Body):
    """Replaces the team's roles. dagRoles is accepted as in UpdateUserRolesRequest (v1)."""

    organizationRole: OrganizationRole
    workspaceRoles: list[WorkspaceRole] = Field(default_factory=list, max_length=ID_LIST)
    deploymentRoles: list[DeploymentRole] = Field(default_factory=list, max_length=ID_LIST)
    dagRoles: list[DagRole] = Field(default_factory=list, max_length=ID_LIST)


# --- responses (OpenAPI document only) -------------------------------------------------------


class Invite(BaseModel):
    expiresAt: datetime
    inviteId: str
    invitee: BasicSubjectProfile
    inviter: BasicSubjectProfile
    organizationId: str
    organizationName: str | None = None
    userId: str | None = None


class Role(BaseModel):
    createdAt: datetime
    createdBy: BasicSubjectProfile
    description: str | None = None
    id: str
    name: str
    restrictedWorkspaceIds: list[str]
    scopeType: CustomRoleScope
    updatedAt: datetime
    updatedBy: BasicSubjectProfile


class RoleWithPermission(Role):
    permissions: list[str]


class DefaultRole(BaseModel):
    description: str | None = None
    name: str
    permissions: list[str]
    scopeType: RoleScopeFilter


class RolesPaginated(BaseModel):
    defaultRoles: list[DefaultRole] | None = None
    limit: int
    offset: int
    roles: list[Role]
    totalCount: int


class Team(BaseModel):
    createdAt: datetime
    createdBy: BasicSubjectProfile | None = None
    deploymentRoles: list[DeploymentRole] | None = None
    dagRoles: list[DagRole] | None = None
    description: str | None = None
    id: str
    isIdpManaged: bool
    name: str
    organizationId: str
    organizationRole: OrganizationRole
    rolesCount: int | None = None
    updatedAt: datetime
    updatedBy: BasicSubjectProfile | None = None
    workspaceRoles: list[WorkspaceRole] | None = None


class TeamsPaginated(BaseModel):
    limit: int
    offset: int
    teams: list[Team]
    totalCount: int


class TeamMember(BaseModel):
    avatarUrl: str | None = None
    createdAt: datetime | None = None
    fullName: str | None = None
    userId: str
    username: str


class TeamMembersPaginated(BaseModel):
    limit: int
    offset: int
    teamMembers: list[TeamMember]
    totalCount: int
