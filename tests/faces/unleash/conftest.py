"""An app that requires elevation (TENANTRY_REQUIRE_ELEVATION=true) for the unleash tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import unquote

import httpx
import pytest

from tenantry.app import create_app
from tenantry.config import Settings, load_settings
from tenantry.db.engine import Database


@pytest.fixture
async def strict(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app with elevation required and sign-in rate limits out of the way."""
    strict_settings = load_settings(
        database_url=settings.database_url,
        environment="test",
        max_body_bytes=64 * 1024,
        require_elevation=True,
        login_rate_per_account=1000,
        login_rate_per_ip=1000,
    )
    app = create_app(strict_settings, database)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenantry.test") as c:
        yield c


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> str:
    """Unleash's simple sign-in; the session's secret (the cookie's value is `s:<secret>`)."""
    r = await client.post("/auth/simple/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    client.cookies.clear()  # each request below names its credential itself
    return unquote(r.cookies["unleash-session"])[2:]


def cookie(secret: str) -> dict[str, str]:
    return {"Cookie": f"unleash-session=s%3A{secret}"}


async def elevate(client: httpx.AsyncClient, secret: str, password: str) -> None:
    """Elevate this session (Unleash has no such route: the native face's)."""
    r = await client.post(
        "/tenantry/v1/auth/elevate",
        headers={"Authorization": f"Bearer {secret}"},
        json={"password": password},
    )
    assert r.status_code == 200, r.text
