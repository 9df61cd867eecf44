"""Native request bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tenantry.authz.scopes import ScopeType


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=4096)


class CreateOrganization(Body):
    name: str = Field(min_length=1, max_length=256)
    billingEmail: str | None = Field(default=None, max_length=320)
    supportPlan: str | None = None


class CreateUser(Body):
    username: str = Field(min_length=1, max_length=320)
    fullName: str | None = Field(default=None, max_length=256)
    avatarUrl: str | None = Field(default=None, max_length=2048)
    email: str | None = Field(default=None, max_length=320)


class UpdateUser(Body):
    fullName: str | None = Field(default=None, max_length=256)
    avatarUrl: str | None = Field(default=None, max_length=2048)
    email: str | None = Field(default=None, max_length=320)
    status: str | None = None
    enabled: bool | None = None


class CreateToken(Body):
    name: str = Field(default="", max_length=256)
    expiresInDays: int | None = Field(default=None, ge=1, le=3650)


class Subject(Body):
    type: str = Field(pattern="^(user|token)$")
    id: str = Field(max_length=64)


class ScopeRef(Body):
    type: ScopeType
    id: str | None = Field(default=None, max_length=64)
    dagId: str | None = Field(default=None, max_length=250)
    dagTag: str | None = Field(default=None, max_length=250)
    dagTags: list[str] = Field(default_factory=list, max_length=100)


class CheckRequest(Body):
    subject: Subject
    permission: str = Field(max_length=200)
    scope: ScopeRef


class WhoCanRequest(Body):
    permission: str = Field(max_length=200)
    scope: ScopeRef
    limit: int = Field(default=1000, ge=1, le=10_000, description="holders a page")
    cursor: str | None = Field(
        default=None, max_length=4096, description="nextCursor of the previous page"
    )


class Login(Body):
    username: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class Elevate(Body):
    password: str = Field(min_length=1, max_length=1024)


class SetPassword(Body):
    password: str = Field(min_length=1, max_length=1024)
    currentPassword: str | None = Field(default=None, max_length=1024)


class SystemRole(Body):
    role: str | None = Field(default=None, max_length=64)


class CreateScimToken(Body):
    name: str = Field(default="", max_length=256)
    # null: the token never expires
    expiresInDays: int | None = Field(default=365, ge=1, le=3650)
    defaultRole: str = Field(default="ORGANIZATION_MEMBER", max_length=64)


class ClaimDomain(Body):
    domain: str = Field(min_length=1, max_length=253)


class CreateSystemApiToken(Body):
    role: str = Field(max_length=64)  # a SYSTEM role, e.g. SYSTEM_ADMIN
    name: str = Field(default="", max_length=256)
    # null: the token never expires
    expiresInDays: int | None = Field(default=365, ge=1, le=3650)
