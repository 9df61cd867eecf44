"""The Unleash session cookie (issue 14, finding 8): a change authenticated by the cookie alone
must be JSON (CSRF: a cross-site form cannot send that content type), and the cookie is
`Secure` when Tenantry is reached over https."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent, User
from tenantry.faces.unleash.errors import MISSING
from tests.faces.errors import unleash_error
from tests.faces.unleash import spec
from tests.faces.unleash.test_me import PASSWORD, viewer, with_password
from tests.factories import World

SPLASH = "/api/admin/splash/new-ui"
ME = "/api/admin/user"
LOGIN = {"username": "peer.user@example.com", "password": PASSWORD}


def refused_as(kind: str) -> str:
    return (
        f"We do not accept the content-type you provided ({kind}). Try using one of the "
        "content-types we do accept instead (application/json) and make sure the body is in "
        "the corresponding format."
    )


async def signed_in(client: httpx.AsyncClient, world: World) -> User:
    user = await viewer(world)
    await with_password(world, user)
    r = await client.post("/auth/simple/login", json=LOGIN)
    assert r.status_code == 200, r.text
    client.cookies.clear()
    client.cookies.set("unleash-session", r.cookies["unleash-session"])
    return user


async def splash_events(database: Database) -> list[AuditEvent]:
    async with database.transaction(write=False) as db:
        # Unleash's splash state is the user's own attributes (users.set_own_attributes).
        query = select(AuditEvent).where(AuditEvent.action == "user.attributes.set")
        return [e for e in await db.scalars(query) if "splashId" in e.details]


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ({"data": {"seen": "true"}}, "application/x-www-form-urlencoded"),  # a CSRF form
        ({"content": b"seen=true", "headers": {"content-type": "text/plain"}}, "text/plain"),
        ({}, "none"),
    ],
)
async def test_a_cookie_only_change_that_is_not_json_is_refused(
    client: httpx.AsyncClient, world: World, content: dict[str, object], kind: str
) -> None:
    await signed_in(client, world)
    r = await client.post(SPLASH, **content)  # type: ignore[arg-type]
    assert r.status_code == 415, r.text
    body = r.json()
    assert isinstance(body.pop("id"), str)
    message = refused_as(kind)
    assert body == {
        "name": "ContentTypeError",
        "message": message,
        "details": [{"message": message}],
    }
    captured = spec.response(27)[2]  # Unleash's own refusal of a text/plain body
    assert r.json().keys() == captured.keys() and captured["name"] == "ContentTypeError"
    assert captured["message"] == refused_as("text/plain")
    assert (await client.get(ME)).json()["splash"] == {}  # nothing changed
    assert await splash_events(world.database) == []


async def test_a_cookie_only_change_in_json_is_accepted(
    client: httpx.AsyncClient, world: World
) -> None:
    """As Unleash's own web client sends it (`Content-Type: application/json` on every call)."""
    await signed_in(client, world)
    json_type = {"content-type": "application/json; charset=utf-8"}
    r = await client.post(SPLASH, headers=json_type)
    assert r.status_code == 200 and r.json()["seen"] is True
    assert (await client.get(ME)).json()["splash"] == {"new-ui": True}
    assert len(await splash_events(world.database)) == 1


async def test_a_token_is_not_held_to_the_cookie_rule(
    client: httpx.AsyncClient, world: World
) -> None:
    """A header is no CSRF risk (a browser never adds one by itself), so API clients keep
    posting without a body or content type; reads with the cookie need none either."""
    user = await signed_in(client, world)
    assert (await client.get(ME)).status_code == 200
    token = await world.token(user)
    client.cookies.clear()
    r = await client.post(SPLASH, headers={"Authorization": token})
    assert r.status_code == 200, r.text


async def test_a_bad_cookie_is_a_401_before_the_content_type_is_looked_at(
    client: httpx.AsyncClient,
) -> None:
    """An unknown session is no session to Unleash: its login hint (capture 02's body)."""
    client.cookies.set("unleash-session", "s%3Atnt_not-a-session")
    r = await client.post(SPLASH, data={"seen": "true"})
    body = unleash_error(r, 401, "AuthenticationRequired", MISSING)
    assert (body["path"], body["type"], body["defaultHidden"]) == (
        "/auth/simple/login",
        "password",
        False,
    )


@pytest.fixture
async def https_client(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        settings.model_copy(update={"public_url": "https://tenantry.example"}), database
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://tenantry.example") as c:
        yield c


async def test_the_cookie_is_secure_over_https(
    client: httpx.AsyncClient, https_client: httpx.AsyncClient, world: World
) -> None:
    await with_password(world, await viewer(world))
    secure = await https_client.post("/auth/simple/login", json=LOGIN)
    assert secure.status_code == 200
    attributes = [a.strip().lower() for a in secure.headers["set-cookie"].split(";")]
    assert "secure" in attributes and "httponly" in attributes and "samesite=lax" in attributes
    plain = await client.post("/auth/simple/login", json=LOGIN)  # TENANTRY_PUBLIC_URL http://
    assert plain.status_code == 200
    assert "secure" not in [a.strip().lower() for a in plain.headers["set-cookie"].split(";")]
