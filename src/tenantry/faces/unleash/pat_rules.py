"""Unleash personal access tokens: Tenantry personal tokens of the caller. Unleash numbers
PATs; a Tenantry token id is a string, so the number shown is a stable 48-bit digest of it and
a PAT is found again by that number among its owner's tokens."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.clock import utcnow
from tenantry.db.models import Token, User
from tenantry.errors import FieldError, Invalid, NotFound
from tenantry.identity import personal_tokens
from tenantry.identity.principals import Principal

MAX_DESCRIPTION = 256


def pat_number(token: Token) -> int:
    return int.from_bytes(hashlib.sha256(token.id.encode()).digest()[:6], "big") or 1


def _own(actor: Principal) -> User:
    if actor.user is None or actor.token is None or actor.token.kind == "api":
        raise Invalid("User id is missing in request user object")
    return actor.user


def _required(name: str) -> FieldError:
    return FieldError(
        f"/body/{name}",
        "required",
        f"The `/body/{name}` property is required. It was not present on the data you sent.",
    )


def _parse_expiry(value: Any) -> datetime:
    if not isinstance(value, str):
        raise Invalid("invalid body", [_required("expiresAt")])
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(
            "invalid body",
            [FieldError("/body/expiresAt", "format", 'must match format "date-time"')],
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= utcnow():
        raise Invalid("The expiry date should be in future.")
    return moment


@dataclass
class Pat:
    token: Token
    user: User
    secret: str | None = None


async def list_pats(db: AsyncSession, actor: Principal) -> list[Pat]:
    user = _own(actor)
    tokens = await personal_tokens.list_personal_tokens(db, actor, user.id)
    now = utcnow()
    return [
        Pat(t, user)
        for t in tokens
        if t.revoked_at is None and (t.expires_at is None or t.expires_at > now)
    ]


async def create_pat(db: AsyncSession, actor: Principal, body: dict[str, Any]) -> Pat:
    user = _own(actor)
    extra = [k for k in body if k not in ("description", "expiresAt")]
    if extra:
        raise Invalid(
            "invalid body",
            [
                FieldError(
                    f"/body/{k}",
                    "additional",
                    "The `/body` object of the request body does not allow additional "
                    f"properties. Your request included the `/body/{k}` property.",
                )
                for k in extra
            ],
        )
    description = body.get("description")
    if not isinstance(description, str):
        raise Invalid("invalid body", [_required("description")])
    if len(description) > MAX_DESCRIPTION:
        raise Invalid("The description is too long.")
    expires_at = _parse_expiry(body.get("expiresAt"))
    minted = await personal_tokens.create_personal_token(
        db, actor, user.id, name=description, expires_in_days=None
    )
    minted.token.expires_at = expires_at
    await db.flush()
    return Pat(minted.token, user, minted.secret)


async def delete_pat(db: AsyncSession, actor: Principal, number: int) -> None:
    user = _own(actor)
    for token in await personal_tokens.list_personal_tokens(db, actor, user.id):
        if pat_number(token) == number and token.revoked_at is None:
            await personal_tokens.revoke_own_token(db, actor, token.id)
            return
    raise NotFound("Could not find a PAT with that id")
