"""Rule: exactly one Authorization header, read by the same reader on the hot path and the
full path (issue 14, finding 5), through every face.

The attack: send the caller's real token and a made-up string as two Authorization headers to a
hot GET. The hot path used to cache the answer (made for the first header's caller) under the
digest of the last header, after which the made-up string alone authenticated as that caller
until the next change. Now two headers are a 401 in the face's own error body, before and
after the cache is warm, and the made-up value never authenticates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from tenantry.db.models import User
from tenantry.faces.credentials import AMBIGUOUS
from tests.faces.ece.conftest import basic, with_password
from tests.faces.errors import BAD_TOKEN
from tests.factories import World

Headers = list[tuple[str, str]]


def _astro(r: httpx.Response, message: str) -> None:
    body = r.json()
    assert body == {"message": message, "requestId": r.headers["x-request-id"], "statusCode": 401}


def _ece(r: httpx.Response, message: str) -> None:
    assert r.json() == {"errors": [{"code": "root.unauthorized", "message": message}]}
    assert r.headers["x-cloud-error-codes"] == "root.unauthorized"


def _unleash(r: httpx.Response, message: str) -> None:
    """Unleash words every refused credential alike, whatever the domain's `message`."""
    body = r.json()
    assert isinstance(body.pop("id"), str)
    message = "You must log in to use Unleash."
    assert body == {
        "name": "UnauthorizedError",
        "message": message,
        "details": [{"message": message}],
    }


def _native(r: httpx.Response, message: str) -> None:
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert (body["status"], body["title"], body["detail"]) == (401, "Unauthorized", message)


@dataclass(frozen=True)
class Face:
    name: str
    path: str  # a GET that needs a caller
    scheme: str  # how the token is presented: "Bearer {}", "ApiKey {}", "{}"
    # the face's 401 body, given the domain's message (two headers: AMBIGUOUS)
    refused: Callable[[httpx.Response, str], None]


FACES = [
    Face("astro", "/v1/users/self", "Bearer {}", _astro),
    Face("ece", "/api/v1/user", "ApiKey {}", _ece),
    Face("ece-bearer", "/api/v1/user", "Bearer {}", _ece),
    Face("unleash", "/api/admin/user", "{}", _unleash),
    Face("unleash-bearer", "/api/admin/user", "Bearer {}", _unleash),
    Face("native", "/tenantry/v1/me/tokens", "Bearer {}", _native),
    # not hot paths: the faces' normal routes read the same way
    Face("astro-route", "/v1/users/self?createIfNotExist=false", "Bearer {}", _astro),
    Face("ece-route", "/api/v1/users/auth", "ApiKey {}", _ece),
    Face("unleash-route", "/api/admin/user/profile", "{}", _unleash),
]
MADE_UP = "tnt_made-up-value-that-was-never-issued"


def _two(face: Face, first: str, second: str) -> Headers:
    return [
        ("authorization", face.scheme.format(first)),
        ("authorization", face.scheme.format(second)),
    ]


async def _get(client: httpx.AsyncClient, face: Face, headers: Headers) -> httpx.Response:
    return await client.get(face.path, headers=headers)


@pytest.mark.parametrize("face", FACES, ids=[f.name for f in FACES])
async def test_two_authorization_headers_are_refused_and_never_cached(
    client: httpx.AsyncClient, world: World, face: Face
) -> None:
    token = await world.token(await world.user())
    one = [("authorization", face.scheme.format(token))]
    # cold cache: the real token first, a made-up one last (the attack of finding 5)
    for headers in (_two(face, token, MADE_UP), _two(face, MADE_UP, token)):
        r = await _get(client, face, headers)
        assert r.status_code == 401, r.text
        face.refused(r, AMBIGUOUS)
    made_up = await _get(client, face, [("authorization", face.scheme.format(MADE_UP))])
    assert made_up.status_code == 401, made_up.text
    face.refused(made_up, BAD_TOKEN)
    # warm cache: the real token alone is answered (and cached), two headers still are not
    for _ in range(2):
        assert (await _get(client, face, one)).status_code == 200
    for headers in (_two(face, token, MADE_UP), _two(face, token, token)):
        r = await _get(client, face, headers)
        assert r.status_code == 401, r.text
        face.refused(r, AMBIGUOUS)
    made_up = await _get(client, face, [("authorization", face.scheme.format(MADE_UP))])
    assert made_up.status_code == 401, made_up.text
    face.refused(made_up, BAD_TOKEN)


HOT = [f for f in FACES if f.name in ("astro", "ece", "unleash")]


@pytest.mark.parametrize("face", HOT, ids=[f.name for f in HOT])
async def test_a_made_up_second_header_never_authenticates_later(
    client: httpx.AsyncClient, world: World, face: Face
) -> None:
    """Finding 5 step by step: whatever the two-header request answers, the made-up value
    presented alone afterwards is refused (it used to be answered as the real caller)."""
    user = await world.user()
    token = await world.token(user)
    await _get(client, face, _two(face, token, MADE_UP))
    for _ in range(3):
        r = await _get(client, face, [("authorization", face.scheme.format(MADE_UP))])
        assert r.status_code == 401, r.text
        face.refused(r, BAD_TOKEN)
        assert user.id not in r.text and user.username not in r.text


async def test_basic_beside_an_api_key_is_refused_and_not_counted(
    client: httpx.AsyncClient, world: World
) -> None:
    """ECE: HTTP Basic and an API key together are two headers too; neither is read, so the
    password is not tried (nor counted against the account)."""
    user = await with_password(world, "ops")
    token = await world.token(user)
    wrong = basic("ops", "not-the-password-13")["Authorization"]
    headers = [("authorization", f"ApiKey {token}"), ("authorization", wrong)]
    r = await client.get("/api/v1/users/auth", headers=headers)
    assert r.status_code == 401
    _ece(r, AMBIGUOUS)
    async with world.database.transaction(write=False) as db:
        stored = await db.scalar(select(User).where(User.id == user.id))
        assert stored is not None and stored.login_attempts == 0


async def test_a_header_wins_over_the_unleash_cookie(
    client: httpx.AsyncClient, world: World
) -> None:
    """A header and the session cookie are not ambiguous: the header is the credential, and
    the cookie is not read (a made-up header with a real cookie is refused)."""
    token = await world.token(await world.user())
    client.cookies.set("unleash-session", f"s%3A{token}")
    assert (await client.get("/api/admin/user/profile")).status_code == 200
    r = await client.get("/api/admin/user/profile", headers={"authorization": MADE_UP})
    assert r.status_code == 401 and r.json()["name"] == "UnauthorizedError"
