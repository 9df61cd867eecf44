"""An organization's SCIM tokens: made, listed and revoked by its owners (and system
administrators), whichever face or the CLI asks.

- create: `organization.scimTokens.create` at the organization and elevation when the instance
  demands it (a SCIM token creates accounts); the default role is an organization role below
  owner (an identity provider never makes owners); the expiry is 1..3650 days or none. The
  secret is returned once. Audited `organization.scim_token.create`.
- list: `organization.scimTokens.list`; the organization's tokens not revoked, oldest first.
- revoke: `organization.scimTokens.delete`; a token of another organization, or not a SCIM
  token, is "not found". Audited `organization.scim_token.revoke`. Refused from the next
  request on (the SCIM face reads its token on every request).

An organization the caller cannot see is "not found", as a made-up id.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.log import record
from tenantry.authz import scopes
from tenantry.authz.catalogue import ORGANIZATION_ROLES
from tenantry.db.models import Token
from tenantry.directory import organizations
from tenantry.directory.members import OWNER
from tenantry.errors import FieldError, Invalid, NotFound
from tenantry.identity import tokens
from tenantry.identity.principals import Principal
from tenantry.identity.scim_tokens import mint_scim_token
from tenantry.identity.tokens import Minted, TokenKind

DEFAULT_ROLE = "ORGANIZATION_MEMBER"
DEFAULT_DAYS = 365
MAX_DAYS = 3650
MAX_NAME = 256
# Roles a SCIM token may give the users it provisions.
PROVISIONED_ROLES = tuple(r for r in ORGANIZATION_ROLES if r != OWNER)


def _check(default_role: str, days: int | None, name: str) -> None:
    if default_role not in PROVISIONED_ROLES:
        raise Invalid(
            "invalid default role",
            [FieldError("defaultRole", "invalid", f"one of {', '.join(PROVISIONED_ROLES)}")],
        )
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise Invalid(
            "invalid expiry",
            [FieldError("expiresInDays", "out_of_range", f"between 1 and {MAX_DAYS}")],
        )
    if len(name) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise Invalid(
            "invalid name", [FieldError("name", "invalid", f"at most {MAX_NAME} characters")]
        )


async def create_scim_token(
    db: AsyncSession,
    actor: Principal,
    org_id: str,
    *,
    default_role: str = DEFAULT_ROLE,
    expires_in_days: int | None = DEFAULT_DAYS,
    name: str = "",
) -> Minted:
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.scimTokens.create", scopes.organization(org_id))
    _check(default_role, expires_in_days, name)
    actor.require_elevation()
    minted = await mint_scim_token(
        db,
        organization_id=org_id,
        default_role=default_role,
        name=name or "scim",
        expires_at=tokens.expiry_from_days(expires_in_days),
        created_by=actor.actor_id,
    )
    await record(
        db,
        actor,
        "organization.scim_token.create",
        target_type="token",
        target_id=minted.token.id,
        organization_id=org_id,
        details={"default_role": default_role, "expires_in_days": expires_in_days},
    )
    return minted


async def list_scim_tokens(db: AsyncSession, actor: Principal, org_id: str) -> list[Token]:
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.scimTokens.list", scopes.organization(org_id))
    rows = await db.scalars(
        select(Token)
        .where(
            Token.kind == TokenKind.SCIM.value,
            Token.organization_id == org_id,
            Token.revoked_at.is_(None),
        )
        .order_by(Token.created_at, Token.id)
    )
    return list(rows)


async def revoke_scim_token(
    db: AsyncSession, actor: Principal, org_id: str, token_id: str
) -> Token:
    await organizations.get_visible(db, actor, org_id)
    actor.require("organization.scimTokens.delete", scopes.organization(org_id))
    token = await db.get(Token, token_id)
    if token is None or token.kind != TokenKind.SCIM.value or token.organization_id != org_id:
        raise NotFound("token not found")
    revoked = await tokens.revoke(db, token_id, by=actor.actor_id)
    await record(
        db,
        actor,
        "organization.scim_token.revoke",
        target_type="token",
        target_id=token_id,
        organization_id=org_id,
    )
    return revoked
