"""What Express does around Unleash's routes (issue 16): JSON says its charset, HEAD is the GET
without a body, a trailing slash or a doubled one is the same path (no redirect), a method a
path does not serve is `404 NotFoundError` after authentication, and outside /api a GET is a
web page and any other method Express's HTML 404."""

from __future__ import annotations

import httpx

from tenantry.faces.unleash.errors import MISSING
from tests.faces.errors import unleash_error
from tests.faces.unleash.test_me import admin_named_admin
from tests.factories import World

JSON_UTF8 = "application/json; charset=utf-8"


def not_available(path: str) -> str:
    return f"The path you were looking for ({path}) is not available."


async def test_every_json_answer_names_its_charset(client: httpx.AsyncClient, world: World) -> None:
    auth = {"Authorization": await world.token(await admin_named_admin(world))}
    for _ in range(2):  # the hot path's first answer, then its cached one
        r = await client.get("/api/admin/user", headers=auth)
        assert r.status_code == 200 and r.headers["content-type"] == JSON_UTF8
    for r in (
        await client.get("/api/admin/user-admin", headers=auth),
        await client.get("/api/admin/user/profile", headers=auth),
        await client.get("/api/admin/user"),  # 401
        await client.get("/api/admin/user-admin/abc", headers=auth),  # 400
        await client.get("/api/admin/nope", headers=auth),  # 404
        await client.post("/auth/simple/login", json={"username": "x", "password": "y"}),
    ):
        assert r.headers["content-type"] == JSON_UTF8, (r.request.url, r.headers)


async def test_head_is_the_get_without_its_body(client: httpx.AsyncClient, world: World) -> None:
    auth = {"Authorization": await world.token(await admin_named_admin(world))}
    for path in ("/api/admin/user", "/api/admin/user-admin", "/api/admin/user/tokens"):
        got = await client.get(path, headers=auth)
        head = await client.head(path, headers=auth)
        assert head.status_code == got.status_code == 200, (path, head.status_code)
        assert head.content == b""
        assert head.headers["content-type"] == JSON_UTF8
        assert head.headers["content-length"] == str(len(got.content))
    head = await client.head("/api/admin/user-admin")
    assert head.status_code == 401 and head.content == b""


async def test_trailing_and_doubled_slashes_are_the_same_path(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = {"Authorization": await world.token(await admin_named_admin(world))}
    expected = (await client.get("/api/admin/user-admin", headers=auth)).json()
    for path in ("/api/admin/user-admin/", "/api/admin//user-admin", "/api/admin/user-admin//"):
        r = await client.get(path, headers=auth)
        assert r.status_code == 200, (path, r.status_code, r.headers.get("location"))
        assert r.json()["users"] == expected["users"]
    r = await client.post("/auth/simple/login/", json={"username": "nobody", "password": "x"})
    assert r.status_code == 401 and r.json()["name"] == "PasswordMismatch"


async def test_a_method_a_path_does_not_serve_is_not_found(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = {"Authorization": await world.token(await admin_named_admin(world))}
    for method, path in (
        ("PATCH", "/api/admin/user-admin/1"),
        ("DELETE", "/api/admin/user"),
        ("PUT", "/api/admin/user/tokens"),
        ("POST", "/api/admin/user-admin/search"),
        ("GET", "/api/admin/user-admin/1/change-password"),
    ):
        r = await client.request(method, path, headers=auth, json={})
        body = unleash_error(r, 404, "NotFoundError", not_available(path))
        assert body["details"] == [{"message": not_available(path)}]
        # Unleash authenticates all of /api first: without a credential, its login hint.
        r = await client.request(method, path, json={})
        body = unleash_error(r, 401, "AuthenticationRequired", MISSING)
        assert body["path"] == "/auth/simple/login" and body["type"] == "password"
    r = await client.get("/api/admin/no-such-route")
    unleash_error(r, 401, "AuthenticationRequired", MISSING)
    r = await client.get("/api/admin/no-such-route", headers={"Authorization": "nope"})
    unleash_error(r, 401, "UnauthorizedError")


async def test_outside_api_a_get_is_a_page_and_other_methods_express_404(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/auth/simple/login", "/auth/simple/login/", "/auth/simple/anything"):
        r = await client.get(path)
        assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
        assert "POST /auth/simple/login" in r.text
    r = await client.put("/auth/simple/login", json={})
    assert r.status_code == 404 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert "<pre>Cannot PUT /auth/simple/login</pre>" in r.text
    r = await client.delete("/auth/simple/%3Cscript%3E")
    assert r.status_code == 404 and "<script>" not in r.text and "&lt;script&gt;" in r.text
