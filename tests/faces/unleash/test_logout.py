"""POST /logout, Unleash's sign-out (issue 16): 302 to /signed-out, the cookie cleared, and the
session dead on every worker (the domain's revoke_sessions: every session of the user, as
Unleash's deleteSessionsForUser), so that the old cookie is Unleash's AuthenticationRequired.
It takes Unleash's web client's plain form post (no JSON needed) and, like all of Unleash's
/logout, a credential first."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from tenantry.db.models import AuditEvent, Token
from tenantry.faces.unleash.errors import MISSING
from tests.faces.errors import unleash_error
from tests.faces.unleash.conftest import cookie, sign_in
from tests.faces.unleash.test_me import PASSWORD, viewer, with_password
from tests.factories import World

ME = "/api/admin/user"
USERNAME = "peer.user@example.com"


async def test_logout_ends_the_session_and_clears_the_cookie(
    client: httpx.AsyncClient, world: World
) -> None:
    user = await viewer(world)
    await with_password(world, user)
    mine = cookie(await sign_in(client, USERNAME, PASSWORD))
    other = cookie(await sign_in(client, USERNAME, PASSWORD))  # another browser
    pat = {"Authorization": await world.token(user)}
    assert (await client.get(ME, headers=mine)).status_code == 200
    # As Unleash's web client signs out: a form post, no JSON.
    r = await client.post(
        "/logout", headers={**mine, "content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 302 and r.headers["location"] == "/signed-out"
    assert r.text == "Found. Redirecting to /signed-out"
    set_cookie = r.headers["set-cookie"]
    assert set_cookie.startswith("unleash-session=") and "Max-Age=0" in set_cookie
    assert "Path=/" in set_cookie and "HttpOnly" in set_cookie
    for headers in (mine, other):  # every session of the user ended (Unleash)
        stale = await client.get(ME, headers=headers)
        body = unleash_error(stale, 401, "AuthenticationRequired", MISSING)
        assert body["path"] == "/auth/simple/login"
    assert (await client.get(ME, headers=pat)).status_code == 200  # a PAT is no session
    async with world.database.transaction() as db:
        sessions = list(await db.scalars(select(Token).where(Token.user_id == user.id)))
        events = list(
            await db.scalars(select(AuditEvent).where(AuditEvent.action == "auth.sessions.revoke"))
        )
    assert all(t.revoked_at is not None for t in sessions if t.kind == "session")
    assert [e.details for e in events] == [{"count": 2}]
    # Signed out, /logout is Unleash's 401; the page it leads to needs nothing.
    unleash_error(await client.post("/logout", headers=mine), 401, "AuthenticationRequired")
    page = await client.get("/signed-out")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


async def test_logout_with_a_token_or_nothing(client: httpx.AsyncClient, world: World) -> None:
    user = await viewer(world)
    await with_password(world, user)
    session = cookie(await sign_in(client, USERNAME, PASSWORD))
    pat = {"Authorization": await world.token(user)}
    r = await client.post("/logout", headers=pat)  # Unleash: the PAT's user's sessions end
    assert r.status_code == 302
    assert (await client.get(ME, headers=session)).status_code == 401
    api = await world.api_token(await world.org())
    r = await client.post("/logout", headers={"Authorization": api.secret})
    assert r.status_code == 302  # no user, no session: only the redirect
    unleash_error(await client.post("/logout"), 401, "AuthenticationRequired", MISSING)
    r = await client.post("/logout", headers={"Authorization": "nope"})
    unleash_error(r, 401, "UnauthorizedError")
    assert (await client.post("/logout/", headers=pat)).status_code == 302  # a trailing slash


async def test_other_methods_of_logout(client: httpx.AsyncClient, world: World) -> None:
    user = await viewer(world)
    pat = {"Authorization": await world.token(user)}
    unleash_error(await client.get("/logout"), 401, "AuthenticationRequired")
    page = await client.get("/logout", headers=pat)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    r = await client.put("/logout", headers=pat)
    assert r.status_code == 404 and "<pre>Cannot PUT /logout</pre>" in r.text
    r = await client.delete("/signed-out")
    assert r.status_code == 404 and "<pre>Cannot DELETE /signed-out</pre>" in r.text
