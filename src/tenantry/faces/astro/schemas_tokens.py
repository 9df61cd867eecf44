"""Astro API token request bodies and (for the OpenAPI document only) response shapes, as
iam-v1beta1 defines them (ApiToken, ApiTokenRole, ApiTokensPaginated, CreateApiTokenRequest,
UpdateApiTokenRequest, UpdateApiTokenRolesRequest)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from tenantry.faces.astro.schemas import BasicSubjectProfile, Body
from tenantry.ids import ID_PATTERN


class ApiTokenType(StrEnum):
    DEPLOYMENT = "DEPLOYMENT"
    WORKSPACE = "WORKSPACE"
    ORGANIZATION = "ORGANIZATION"


# --- requests --------------------------------------------------------------------------------


class CreateApiTokenRequest(Body):
    name: str = Field(min_length=1, max_length=256)
    description: str | None = Field(default=None, max_length=500)
    entityId: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="The Workspace or Deployment of the token; required unless `type` is "
        "ORGANIZATION.",
    )
    role: str = Field(min_length=1, max_length=128)
    tokenExpiryPeriodInDays: int | None = Field(
        default=None, ge=1, le=3650, description="Never expires when not given."
    )
    type: ApiTokenType


class UpdateApiTokenRequest(Body):
    name: str = Field(min_length=1, max_length=256)
    description: str | None = Field(default=None, max_length=500)


class ApiTokenRole(Body):
    entityId: str = Field(pattern=ID_PATTERN)
    entityType: ApiTokenType
    role: str = Field(min_length=1, max_length=128)


class UpdateApiTokenRolesRequest(Body):
    roles: list[ApiTokenRole] = Field(min_length=1, max_length=1000)


# --- responses (OpenAPI document only) -------------------------------------------------------


class ApiToken(BaseModel):
    createdAt: datetime
    createdBy: BasicSubjectProfile | None = None
    description: str
    endAt: datetime | None = None
    expiryPeriodInDays: int | None = None
    id: str
    lastUsedAt: datetime | None = None
    name: str
    roles: list[ApiTokenRole] | None = None
    shortToken: str
    startAt: datetime
    token: str | None = Field(default=None, description="The secret: only in create and rotate.")
    type: ApiTokenType
    updatedAt: datetime
    updatedBy: BasicSubjectProfile | None = None


class ApiTokensPaginated(BaseModel):
    limit: int
    offset: int
    tokens: list[ApiToken]
    totalCount: int
