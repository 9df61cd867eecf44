"""Password history: a password the account had recently cannot be set again.

Every face that sets a password (an administrator's set, your own change, a reset link, an
invite's first password) goes through `replace`. The account keeps the argon2 hashes of its
last passwords (`users.previous_password_hashes`, newest first): the current one and the
`remember - 1` before it, so that `remember` passwords (TENANTRY_PASSWORD_HISTORY, default 5,
as Unleash keeps 5; 0 = off) are refused. The account's holder choosing a password (their own
change, a reset link, an invite) may not pick a remembered one; an administrator setting it is
recorded but not checked, as in Unleash: the history stops a holder cycling back to an old
password, and an administrator who sets one knows what they set. Each is a salted argon2 hash
like the current one, so keeping them tells no more than the current hash does; checking costs
one verification per remembered password, on a change only, never at sign-in.
"""

from __future__ import annotations

from tenantry.db.models import User
from tenantry.errors import FieldError, Invalid
from tenantry.identity.passwords import Hasher


class PasswordReused(Invalid):
    """The new password is one of the account's last passwords (400 in every face)."""


def _remembered(user: User, remember: int) -> list[str]:
    hashes = [user.password_hash] if user.password_hash else []
    return [*hashes, *(user.previous_password_hashes or [])][:remember]


async def replace(
    hasher: Hasher, user: User, new_password: str, remember: int, *, by_holder: bool = True
) -> None:
    """Set `user`'s password (already checked against the policy), refusing one of its last
    `remember` passwords when its holder chooses it (`by_holder`); the one replaced joins the
    remembered either way."""
    remembered = _remembered(user, remember)
    for encoded in remembered if by_holder else ():
        if await hasher.verify(encoded, new_password):
            raise PasswordReused(
                "the password was used before",
                [FieldError("password", "reused", f"one of the last {remember} passwords")],
            )
    user.password_hash = await hasher.hash(new_password)
    user.previous_password_hashes = remembered[: max(remember - 1, 0)]
