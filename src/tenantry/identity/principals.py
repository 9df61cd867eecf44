"""Who is calling: turn a presented secret into a Principal with its grants."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz.catalogue import is_strong
from tenantry.authz.engine import ALL_POWERFUL, Grants, load_token_grants, load_user_grants
from tenantry.authz.scopes import Scope
from tenantry.clock import utcnow
from tenantry.db.generation import FLAGS_SCOPE, role_scope, team_scope, token_scope, user_scope
from tenantry.db.models import Token, User
from tenantry.errors import ElevationRequired, Forbidden, NotFound, Unauthenticated
from tenantry.identity.policy import DEFAULT_POLICY, SecurityPolicy
from tenantry.identity.tokens import (
    MAX_SECRET_LENGTH,
    TokenKind,
    digest,
    is_live,
    is_system_api_token,
)

ELEVATION_HINT = "this operation requires elevated permissions (POST /tenantry/v1/auth/elevate)"


@dataclass
class Principal:
    """The authenticated caller. `user` is None for an API token acting as itself; an
    organization's API token is also held under `ceiling`, its creator's current grants, so
    that it can never do more than the user who made it (a system API token has no creator
    and no ceiling)."""

    grants: Grants
    user: User | None = None
    token: Token | None = None
    system: bool = False  # the CLI and bootstrap: trusted, all-powerful
    ceiling: Grants | None = None
    policy: SecurityPolicy = DEFAULT_POLICY

    @property
    def scopes(self) -> tuple[str, ...]:
        """What a cached answer for this caller is derived from (db/generation.py): its
        user (the API token's creator, whose grants cap it), their teams and custom roles,
        the instance's flags, and an API token's own bindings."""
        found = {FLAGS_SCOPE}
        token = self.token
        if self.user is not None:
            found.add(user_scope(self.user.id))
        elif token is not None:
            found.add(token_scope(token.id))
        if token is not None and token.user_id is not None:
            found.add(user_scope(token.user_id))
        for grants in (self.grants, self.ceiling):
            if grants is not None:
                found.update(team_scope(t) for t in grants.teams)
                found.update(role_scope(org, name) for org, name in grants.custom_roles())
        return tuple(found)

    @property
    def actor_id(self) -> str | None:
        if self.user is not None:
            return self.user.id
        return self.token.id if self.token is not None else None

    @property
    def actor_type(self) -> str:
        if self.system:
            return "system"
        if self.user is not None:
            return "user"
        return "token" if self.token is not None else "anonymous"

    def can(self, permission: str, scope: Scope) -> bool:
        if not self.grants.check(permission, scope):
            return False
        return self.ceiling is None or self.ceiling.check(permission, scope)

    def require(self, permission: str, scope: Scope) -> None:
        """403 unless granted. Callers check visibility (404) first."""
        if not self.can(permission, scope):
            raise Forbidden(f"missing permission {permission}")

    def require_visible(self, permission: str, scope: Scope, what: str) -> None:
        """404 when the caller may not know the object exists, so existence does not leak."""
        if not self.can(permission, scope):
            raise NotFound(f"{what} not found")

    @property
    def elevated(self) -> bool:
        """Whether *this credential* re-entered its user's password recently. Elevation
        belongs to the session that elevated, never to the user: the user's personal tokens
        and other sessions do not share it."""
        if self.system:
            return True
        until = self.elevated_until
        return until is not None and until > utcnow()

    @property
    def elevated_until(self) -> datetime | None:
        token = self.token
        if token is None or token.kind != TokenKind.SESSION or self.user is None:
            return None
        return token.elevated_until

    def require_elevation(self) -> None:
        """Sensitive operations, when the instance demands it (TENANTRY_REQUIRE_ELEVATION)."""
        if self.policy.require_elevation and not self.elevated:
            raise ElevationRequired(ELEVATION_HINT)

    def require_elevation_to_grant(self, roles: Iterable[str]) -> None:
        """The one guard on every path to a strong grant (role replacement, teams, invites,
        API tokens, custom roles, system roles): elevation when the instance demands it and
        any of `roles` is strong (authz.catalogue.is_strong)."""
        if any(is_strong(role) for role in roles):
            self.require_elevation()

    def require_fresh_elevation(self) -> None:
        """A proof of the password where the wire carries none (ECE's self-service password
        change): this credential must be elevated now, whatever the instance's policy."""
        if not self.elevated:
            raise ElevationRequired(ELEVATION_HINT)


def system_principal() -> Principal:
    return Principal(grants=ALL_POWERFUL, system=True)


def anonymous() -> Principal:
    """A caller not (yet) authenticated, e.g. signing in; it may do nothing."""
    return Principal(grants=Grants([]))


class Account(Protocol):
    """What signing in reads of a user: an ORM User, or the row a password sign-in reads."""

    @property
    def password_hash(self) -> str | None: ...
    @property
    def locked_until(self) -> datetime | None: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def status(self) -> str: ...


def user_can_sign_in(user: Account) -> bool:
    return user.enabled and user.status == "ACTIVE"


async def authenticate(
    db: AsyncSession, secret: str, policy: SecurityPolicy = DEFAULT_POLICY
) -> Principal:
    """Every failure reads the same, so a caller learns nothing about which part failed."""
    if len(secret) > MAX_SECRET_LENGTH:
        raise Unauthenticated("invalid or expired token")
    # One round trip: the token (looked up by digest) and its user, if it has one.
    row = (
        await db.execute(
            select(Token, User)
            .outerjoin(User, User.id == Token.user_id)
            .where(Token.digest == digest(secret))
        )
    ).first()
    if row is None or not is_live(row[0], utcnow()):
        raise Unauthenticated("invalid or expired token")
    token, user = row
    if is_system_api_token(token):
        # Instance-wide and no user: its SYSTEM role binding is all it holds, and no creator
        # caps it (directory/system_api_tokens.py); revoking it is the way to end it.
        return Principal(grants=await load_token_grants(db, token.id), token=token, policy=policy)
    # A SCIM token (no user) is good on the SCIM face alone (identity/scim_tokens.py).
    if token.kind == TokenKind.SCIM or user is None or not user_can_sign_in(user):
        raise Unauthenticated("invalid or expired token")
    if token.kind == TokenKind.API:
        # An API token acts as itself, capped by its creator (user_id) as they are now.
        return Principal(
            grants=await load_token_grants(db, token.id),
            token=token,
            ceiling=await load_user_grants(db, user.id),
            policy=policy,
        )
    grants = await load_user_grants(db, user.id)
    return Principal(grants=grants, user=user, token=token, policy=policy)
