"""Astro request bodies and (for the OpenAPI document) response shapes, as the specs define."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from tenantry.authz.catalogue import ORGANIZATION_ROLES, WORKSPACE_ROLES

OrganizationRole = StrEnum("OrganizationRole", {r: r for r in ORGANIZATION_ROLES})  # type: ignore[misc]
WorkspaceRoleName = StrEnum("WorkspaceRoleName", {r: r for r in WORKSPACE_ROLES})  # type: ignore[misc]


class UserStatus(StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    PENDING = "PENDING"
    BANNED = "BANNED"


class Body(BaseModel):
    """Request bodies ignore unknown fields, as Astro's API does, but type-check known ones."""

    model_config = ConfigDict(extra="ignore", str_max_length=4096)


class WorkspaceRole(Body):
    role: WorkspaceRoleName
    workspaceId: str = Field(max_length=64)


class DeploymentRole(Body):
    deploymentId: str = Field(max_length=64)
    role: str = Field(min_length=1, max_length=128)


class DagRole(Body):
    deploymentId: str = Field(max_length=64)
    role: str = Field(min_length=1, max_length=128)
    dagId: str | None = Field(default=None, min_length=1, max_length=250)
    dagTag: str | None = Field(default=None, min_length=1, max_length=250)


class UpdateUserRolesRequest(Body):
    organizationRole: OrganizationRole | None = None
    workspaceRoles: list[WorkspaceRole] = Field(default_factory=list, max_length=1000)
    deploymentRoles: list[DeploymentRole] = Field(default_factory=list, max_length=1000)
    dagRoles: list[DagRole] = Field(default_factory=list, max_length=1000)


class SubjectRoles(BaseModel):
    organizationRole: OrganizationRole | None = None
    workspaceRoles: list[WorkspaceRole] | None = None
    deploymentRoles: list[DeploymentRole] | None = None
    dagRoles: list[DagRole] | None = None


class User(BaseModel):
    avatarUrl: str
    createdAt: datetime
    fullName: str
    id: str
    status: UserStatus
    updatedAt: datetime
    username: str
    organizationRole: OrganizationRole | None = None
    workspaceRoles: list[WorkspaceRole] | None = None
    deploymentRoles: list[DeploymentRole] | None = None
    dagRoles: list[DagRole] | None = None


class UsersPaginated(BaseModel):
    limit: int
    offset: int
    totalCount: int
    users: list[User]


class FeatureFlag(BaseModel):
    key: str
    value: bool


class SelfInvite(BaseModel):
    expiresAt: datetime
    inviteId: str
    organizationId: str


class RoleScope(BaseModel):
    entityId: str
    type: str
    deploymentId: str | None = None
    dagTag: str | None = None


class SelfRole(BaseModel):
    role: str
    scope: RoleScope


class SelfUser(BaseModel):
    avatarUrl: str
    createdAt: datetime
    fullName: str
    id: str
    status: UserStatus
    updatedAt: datetime
    username: str
    featureFlags: list[FeatureFlag] | None = None
    invites: list[SelfInvite] | None = None
    isIdpManaged: bool | None = None
    organizationId: str | None = None
    roles: list[SelfRole] | None = None


class SubjectType(StrEnum):
    USER = "USER"
    SERVICEKEY = "SERVICEKEY"


class BasicSubjectProfile(BaseModel):
    """Who created or changed something: a user, an API token, or `{"id": ""}` for the system."""

    id: str
    subjectType: SubjectType | None = None
    username: str | None = None
    fullName: str | None = None
    avatarUrl: str | None = None
    apiTokenName: str | None = None


class FieldErrorModel(BaseModel):
    code: str
    field: str
    message: str


class Error(BaseModel):
    message: str
    requestId: str
    statusCode: int
    fieldErrors: list[FieldErrorModel] | None = None


ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": Error, "description": text}
    for code, text in (
        (400, "Bad Request"),
        (401, "Unauthorized"),
        (403, "Forbidden"),
        (404, "Not Found"),
        (500, "Internal Server Error"),
    )
}
