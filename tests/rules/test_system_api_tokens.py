"""Rule: a system API token (no user, one SYSTEM role; Unleash's admin API token) is a
credential every HTTP face accepts, presented as that face's clients present a token, and its
revocation ends it on every face from the very next request, whether or not its answers are
cached. (SCIM takes SCIM tokens only: tests/faces/native/test_system_api_tokens.py.)

The "who am I" GET is about the caller, and a system token is no user: a face may refuse it
there in its own words (native 400, ece 404, astro 403) or answer it (unleash: its admin
token's meSchema), but never as an unknown credential (401) while it is live.
"""

from __future__ import annotations

import pytest

from tests.rules.faces import Face, across_faces
from tests.rules.matrix import Refusal, Rig

UNAUTHENTICATED = Refusal.of(401)


@across_faces("hot_get")
@pytest.mark.parametrize("cache", ["cold", "warm"])
async def test_a_system_token_is_accepted_until_revoked(face: Face, rig: Rig, cache: str) -> None:
    token_id, credential = await rig.system_api_token()
    headers = list(face.auth(credential).items())
    for _ in range(2 if cache == "warm" else 1):  # twice: PostgreSQL's cache listens first
        live = await face.hot_get(headers)
        assert live.status != 401, live
        if not live.ok:
            face.assert_error(live, Refusal.of(400, 403, 404), "no user behind the token")
    await rig.revoke_system_api_token(token_id)
    face.assert_error(await face.hot_get(headers), UNAUTHENTICATED, "revoked")
