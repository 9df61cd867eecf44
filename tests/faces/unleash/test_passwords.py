"""Passwords in Unleash's words (issue 16): Unleash's strength test (owasp-password-strength-test
as Unleash 8.2 configures it) with its messages as `OwaspValidationError`, an empty password as
`PasswordUndefinedError`, Tenantry's stricter policy (common passwords, the username) in the
same vocabulary; passwordSchema closed, its three properties strings on every route that takes
it; and the own change in Unleash's order (bare 400, then the test, then 401 PasswordMismatch).
Nothing is written by a refusal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.db.models import User
from tenantry.faces.unleash import owasp
from tenantry.faces.unleash.errors import OLD_PASSWORD_REFUSED, PASSWORD_UNDEFINED
from tests.faces.errors import unleash_error
from tests.faces.unleash import spec
from tests.faces.unleash.test_me import PASSWORD, viewer, with_password
from tests.faces.unleash.test_users import UA, admin_token, owasp_error
from tests.factories import World

# (password, what the npm package says of it): recorded by running owasp-password-strength-test
# 1.3.0 with `allowPassphrases: false` (node, the package from unleash-server 8.2.0).
CASES: list[tuple[str, list[str]]] = [
    (p, e) for p, e in json.loads((Path(__file__).parent / "owasp_cases.json").read_text())
]
COMMON = "P030710p$e4o"  # strong to Unleash's test, and among the commonest passwords
STRONG = "Another-Passw0rd!y"


@pytest.mark.parametrize(("password", "expected"), CASES)
def test_the_strength_test_says_what_the_npm_package_says(
    password: str, expected: list[str]
) -> None:
    assert owasp.errors(password) == expected


async def test_validate_password_in_unleash_words(client: httpx.AsyncClient, world: World) -> None:
    auth = await admin_token(world)
    url = f"{UA}/validate-password"
    for password, expected in CASES:
        r = await client.post(url, headers=auth, json={"password": password})
        if not password:
            body = unleash_error(r, 400, "PasswordUndefinedError", PASSWORD_UNDEFINED)
            assert body["details"] == [{"validationErrors": [], "message": PASSWORD_UNDEFINED}]
        elif expected:
            assert spec.error(r, 400) == owasp_error(*expected), password
        else:
            assert r.status_code == 200 and r.content == b"", password
    common = await client.post(url, headers=auth, json={"password": COMMON})
    assert spec.error(common, 400) == owasp_error(
        "The password is one of the most common passwords."
    )


async def test_password_schema_is_closed_and_typed_on_every_route(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = await admin_token(world)
    user = await viewer(world)
    await with_password(world, user)
    own = {"Authorization": await world.token(user)}
    routes = (
        (f"{UA}/validate-password", auth),
        (f"{UA}/{user.seq}/change-password", auth),
        ("/api/admin/user/change-password", own),
    )
    for url, headers in routes:
        for name in ("confirmPassword", "oldPassword"):
            # 123 and true would be coerced to text (Unleash's validator): no type error
            for value in (["x"], {"x": 1}, None):
                sent = {"password": STRONG, "confirmPassword": STRONG, "oldPassword": PASSWORD}
                r = await client.post(url, headers=headers, json=sent | {name: value})
                error = spec.error(r, 400)
                assert error["name"] == "BadDataError", (url, name, value)
                assert [d["path"] for d in error["details"]] == [f"/body/{name}"]
                assert PASSWORD not in r.text and STRONG not in r.text  # never echoed
        r = await client.post(url, headers=headers, json={"password": STRONG, "bogus": 1})
        assert spec.error(r, 400)["details"] == [
            {
                "path": "/body/bogus",
                "message": "The `/body` object of the request body does not allow additional "
                "properties. Your request included the `/body/bogus` property.",
            }
        ]
    # A scalar is coerced to text, as Unleash's validator does: validate-password ignores it.
    coerced = {"password": STRONG, "oldPassword": 123, "confirmPassword": True}
    r = await client.post(f"{UA}/validate-password", headers=auth, json=coerced)
    assert r.status_code == 200 and r.content == b"", r.text
    login = await client.post(
        "/auth/simple/login", json={"username": "peer.user@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200  # nothing above changed the password


async def test_set_and_create_test_the_password(client: httpx.AsyncClient, world: World) -> None:
    auth = await admin_token(world)
    user = await viewer(world)
    await with_password(world, user)
    url = f"{UA}/{user.seq}/change-password"
    r = await client.post(url, headers=auth, json={"password": "Abcdefgh12"})
    assert spec.error(r, 400) == owasp_error(
        "The password must contain at least one special character."
    )
    r = await client.post(url, headers=auth, json={"password": ""})
    unleash_error(r, 400, "PasswordUndefinedError", PASSWORD_UNDEFINED)
    r = await client.post(url, headers=auth, json={"password": COMMON})
    assert spec.error(r, 400)["name"] == "OwaspValidationError"
    # Unleash sets a password given at creation untested; Tenantry tests it.
    async with world.database.transaction() as db:
        before = await db.scalar(select(func.count(User.seq)))
    for password, reason in (
        ("weakpassword", "The password must contain at least one uppercase letter."),
        ("Made-Up-User1!", "The password may not be the username."),
    ):
        body = {"username": "Made-Up-User1!", "password": password, "rootRole": 3}
        r = await client.post(UA, headers=auth, json=body)
        error: dict[str, Any] = spec.error(r, 400)
        assert (
            error["name"] == "OwaspValidationError"
            and reason in error["details"][0]["validationErrors"]
        ), error
    async with world.database.transaction() as db:
        assert await db.scalar(select(func.count(User.seq))) == before
    login = await client.post(
        "/auth/simple/login", json={"username": "peer.user@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200


async def test_own_change_in_unleash_order(client: httpx.AsyncClient, world: World) -> None:
    user = await viewer(world)
    await with_password(world, user)
    auth = {"Authorization": await world.token(user)}
    url = "/api/admin/user/change-password"

    async def change(**body: Any) -> httpx.Response:
        return await client.post(url, headers=auth, json=body)

    # The confirmation and the old password's presence first: Unleash's bare 400.
    for bare in (
        await change(password="weak", confirmPassword="other", oldPassword="nope"),
        await change(password="weak", confirmPassword="weak"),
    ):
        assert bare.status_code == 400 and bare.content == b""
    # Then the strength test, before the old password is looked at.
    r = await change(password="weak", confirmPassword="weak", oldPassword="nope")
    assert spec.error(r, 400)["name"] == "OwaspValidationError"
    r = await change(password="", confirmPassword="", oldPassword=PASSWORD)
    unleash_error(r, 400, "PasswordUndefinedError", PASSWORD_UNDEFINED)
    # Then the proof: a wrong one is Unleash's 401 PasswordMismatch.
    r = await change(password=STRONG, confirmPassword=STRONG, oldPassword="nope")
    body = unleash_error(r, 401, "PasswordMismatch", OLD_PASSWORD_REFUSED)
    assert body["details"] == [{"message": OLD_PASSWORD_REFUSED}]
    # Then Tenantry's policy, in Unleash's words.
    r = await change(password=COMMON, confirmPassword=COMMON, oldPassword=PASSWORD)
    assert spec.error(r, 400) == owasp_error("The password is one of the most common passwords.")
    assert (
        await change(password=STRONG, confirmPassword=STRONG, oldPassword=PASSWORD)
    ).status_code == 200
