"""Rule 9: one expiry cap for tokens: at most 3650 days.

Native personal tokens (`expiresInDays`), ECE API keys (`expiration`), Unleash PATs
(`expiresAt`, e.g. 9999-12-31), the CLI's `token create --expires-in` and astro's API tokens
(`tokenExpiryPeriodInDays`) refuse a longer life (400 in the face's body, the CLI a non-zero
exit) and write no token; 3649 days is accepted.
"""

from __future__ import annotations

from datetime import date

import pytest

from tenantry.clock import utcnow
from tests.rules.faces import Face, across_faces
from tests.rules.matrix import Refusal, Rig

TO_9999 = (date(9999, 12, 31) - utcnow().date()).days
TOO_LONG = {"3651-days": 3651, "until-9999-12-31": TO_9999}


@across_faces("mint_token")
@pytest.mark.parametrize("length", TOO_LONG)
async def test_a_token_beyond_ten_years_is_refused(face: Face, rig: Rig, length: str) -> None:
    account = await face.actor()
    credential = await face.session(account)
    before = await rig.minted_tokens()
    reply = await face.mint_token(account, credential, TOO_LONG[length])
    face.assert_error(reply, Refusal.of(400), length)
    assert await rig.minted_tokens() == before, "a refused token was written"


@across_faces("mint_token")
async def test_a_token_just_under_ten_years_is_accepted(face: Face, rig: Rig) -> None:
    account = await face.actor()
    credential = await face.session(account)
    before = await rig.minted_tokens()
    reply = await face.mint_token(account, credential, 3649)
    assert reply.ok, reply
    assert await rig.minted_tokens() == before + 1
