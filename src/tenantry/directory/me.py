"""The caller's own view of themselves: profile, roles at every scope, invites, flags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz.engine import Grant
from tenantry.clock import utcnow
from tenantry.db.models import FeatureFlag, Invite, User, UserFeatureFlag
from tenantry.errors import Forbidden
from tenantry.identity.principals import Principal


@dataclass(frozen=True)
class Me:
    user: User
    grants: tuple[Grant, ...]
    invites: list[Invite]
    feature_flags: list[tuple[str, bool]]
    organization_id: str | None


async def feature_flags_for(db: AsyncSession, user_id: str) -> list[tuple[str, bool]]:
    """Every instance flag, with the user's own value where they have one."""
    rows = await db.execute(
        select(FeatureFlag.key, FeatureFlag.default_value, UserFeatureFlag.value)
        .outerjoin(
            UserFeatureFlag,
            (UserFeatureFlag.key == FeatureFlag.key) & (UserFeatureFlag.user_id == user_id),
        )
        .order_by(FeatureFlag.key)
    )
    return [(key, default if own is None else own) for key, default, own in rows]


async def pending_invites_for(db: AsyncSession, user: User) -> list[Invite]:
    """Only invites bound to this account (directory.invites decides whom an invite binds to,
    by verified addresses). Never by the caller's own e-mail or username: those they can set
    themselves, and an invite for an address is no business of whoever claims it."""
    rows = await db.scalars(
        select(Invite)
        .where(
            Invite.user_id == user.id,
            Invite.accepted_at.is_(None),
            Invite.expires_at > utcnow(),
        )
        .order_by(Invite.created_at, Invite.id)
    )
    return list(rows)


def me_of(
    actor: Principal, invites: Sequence[Invite], feature_flags: Sequence[tuple[str, bool]]
) -> Me:
    """The caller's view from what was loaded with them (directory.whoami). Any
    authenticated user may read themselves; API tokens have no self."""
    user = _own(actor)
    grants = tuple(g for g in actor.grants.grants if g.subject_type == "user")
    primary = user.primary_organization_id or next(
        (g.scope.organization_id for g in grants if g.source == "membership"), None
    )
    return Me(
        user=user,
        grants=grants,
        invites=list(invites),
        feature_flags=list(feature_flags),
        organization_id=primary,
    )


def _own(actor: Principal) -> User:
    if actor.user is None:
        raise Forbidden("this credential does not belong to a user")
    return actor.user
