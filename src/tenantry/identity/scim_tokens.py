"""SCIM tokens: an organization's credential for its identity provider.

A SCIM token is a row of `tokens` with kind `scim`, no user (`user_id` NULL: it is the
organization's, not its creator's, and outlives the creator's membership), its organization in
`organization_id` (and as its ORGANIZATION scope), and `default_role`, the organization role
of the users it provisions. Its secret is `tnt_` + 256 random bits, shown once and stored only
as a SHA-256 digest, like every other token.

It is good on the SCIM face only, and no other credential is good there:
`principals.authenticate` (every other face, the hot path) refuses a SCIM token, and
`authenticate_scim` (the SCIM face) refuses anything else. The principal it gives holds one
grant, SCIM_PROVISIONER at its organization (`organization.scim.provision`), so that every
provisioning use case goes through the permission engine like any other.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz import scopes
from tenantry.authz.catalogue import SCIM_PROVISIONER, SCIM_PROVISIONER_PERMISSIONS
from tenantry.authz.engine import Grant, Grants
from tenantry.authz.scopes import ScopeType
from tenantry.clock import utcnow
from tenantry.db.models import Organization, Token
from tenantry.errors import Unauthenticated
from tenantry.identity.policy import DEFAULT_POLICY, SecurityPolicy
from tenantry.identity.principals import Principal
from tenantry.identity.tokens import MAX_SECRET_LENGTH, Minted, TokenKind, digest, is_live, mint

REFUSED = "invalid or expired token"


async def mint_scim_token(
    db: AsyncSession,
    *,
    organization_id: str,
    default_role: str,
    name: str,
    expires_at: datetime | None,
    created_by: str | None,
) -> Minted:
    """A new SCIM token of the organization (no checks: directory.scim_tokens does them)."""
    minted = await mint(
        db,
        kind=TokenKind.SCIM,
        user_id=None,
        name=name,
        expires_at=expires_at,
        organization_id=organization_id,
        created_by=created_by,
        flush=False,
    )
    minted.token.scope_type = ScopeType.ORGANIZATION.value
    minted.token.scope_id = organization_id
    minted.token.default_role = default_role
    await db.flush()
    return minted


def provisioner_grants(token_id: str, organization_id: str) -> Grants:
    """What a SCIM token holds: provisioning in its organization, nothing else."""
    grant = Grant(
        SCIM_PROVISIONER, scopes.organization(organization_id), "token", token_id, "credential"
    )
    return Grants([grant], {(organization_id, SCIM_PROVISIONER): SCIM_PROVISIONER_PERMISSIONS})


async def authenticate_scim(
    db: AsyncSession, secret: str, policy: SecurityPolicy = DEFAULT_POLICY
) -> Principal:
    """The SCIM token behind `secret` as a principal acting as itself; every failure (unknown,
    revoked, expired, another kind of token, its organization gone) reads the same."""
    if len(secret) > MAX_SECRET_LENGTH:
        raise Unauthenticated(REFUSED)
    row = (
        await db.execute(
            select(Token, Organization.status)
            .join(Organization, Organization.id == Token.organization_id)
            .where(Token.digest == digest(secret), Token.kind == TokenKind.SCIM.value)
        )
    ).first()
    if row is None or not is_live(row[0], utcnow()) or row[0].organization_id is None:
        raise Unauthenticated(REFUSED)
    token: Token = row[0]
    assert token.organization_id is not None
    return Principal(
        grants=provisioner_grants(token.id, token.organization_id), token=token, policy=policy
    )


def provisioning_organization(actor: Principal) -> str | None:
    """The organization whose SCIM token the caller is; None for any other caller."""
    token = actor.token
    if token is None or token.kind != TokenKind.SCIM.value or actor.user is not None:
        return None
    return token.organization_id


def organization_of(actor: Principal) -> str:
    """The organization a SCIM caller provisions: its token's. Anything else is refused."""
    found = provisioning_organization(actor)
    if found is None:
        raise Unauthenticated(REFUSED)
    return found
