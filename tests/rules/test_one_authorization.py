"""Rule 5: a request carries exactly one Authorization header.

Two of them (a valid token and a made-up one, in either order) get 400 or 401 in the face's
body, on the face's hot "who am I" GET and on a write, whether or not the valid token's answer
is already cached; the write changes nothing. Afterwards the made-up value alone still gets
401: the refusal taught the cache nothing.
"""

from __future__ import annotations

import secrets

import pytest

from tests.rules.faces import Face, across_faces
from tests.rules.matrix import Credential, Refusal, Rig, changed

REFUSED = Refusal.of(400, 401)
UNAUTHENTICATED = Refusal.of(401)
ORDERS = ["valid-first", "made-up-first"]
CACHE = ["cold", "warm"]


async def _values(face: Face) -> tuple[str, str]:
    """The Authorization values of a real personal token of `actor()` and of a made-up one,
    each as the face's clients send it."""
    credential = await face.personal_token(await face.actor())
    made_up = Credential(f"tnt_{secrets.token_urlsafe(32)}", "personal")
    return face.auth(credential)["Authorization"], face.auth(made_up)["Authorization"]


async def _warm(face: Face, valid: str) -> None:
    """The valid token's hot answer in the cache: asked twice, since on PostgreSQL the first
    use only starts the cache's change listener (nothing is cached before it listens)."""
    for _ in range(2):
        warm = await face.hot_get([("Authorization", valid)])
        assert warm.ok, warm


def _two(valid: str, made_up: str, order: str) -> list[tuple[str, str]]:
    values = [valid, made_up] if order == "valid-first" else [made_up, valid]
    return [("Authorization", v) for v in values]


@across_faces("hot_get")
@pytest.mark.parametrize("cache", CACHE)
@pytest.mark.parametrize("order", ORDERS)
async def test_two_authorization_headers_on_the_hot_get(
    face: Face, rig: Rig, order: str, cache: str
) -> None:
    valid, made_up = await _values(face)
    if cache == "warm":
        await _warm(face, valid)
    face.assert_error(await face.hot_get(_two(valid, made_up, order)), REFUSED, "two headers")
    alone = await face.hot_get([("Authorization", made_up)])
    face.assert_error(alone, UNAUTHENTICATED, "the made-up value alone, afterwards")
    assert (await face.hot_get([("Authorization", valid)])).ok


@across_faces("write")
@pytest.mark.parametrize("cache", CACHE)
@pytest.mark.parametrize("order", ORDERS)
async def test_two_authorization_headers_on_a_write(
    face: Face, rig: Rig, order: str, cache: str
) -> None:
    valid, made_up = await _values(face)
    if cache == "warm":
        await _warm(face, valid)
    before = await rig.snapshot()
    face.assert_error(await face.write(_two(valid, made_up, order)), REFUSED, "two headers")
    assert not changed(before, await rig.snapshot())
    alone = await face.write([("Authorization", made_up)])
    face.assert_error(alone, UNAUTHENTICATED, "the made-up value alone, afterwards")
