"""/api/admin/user/tokens: PATs are Tenantry personal tokens (captures 09, 32), under the
expiry cap every face shares (identity.personal_tokens.MAX_DAYS)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from tenantry.clock import utcnow
from tenantry.db.models import Token, User
from tenantry.identity.personal_tokens import MAX_DAYS
from tests.faces.errors import unleash_error
from tests.faces.unleash import spec
from tests.faces.unleash.conftest import cookie, elevate, sign_in
from tests.faces.unleash.test_me import (
    PASSWORD,
    admin_named_admin,
    same_as_capture,
    viewer,
    with_password,
)
from tests.factories import World, bearer

PATS = "/api/admin/user/tokens"


def unleash_ts(days: int) -> str:
    """Midnight UTC `days` from now, as Unleash writes a moment."""
    moment = (utcnow() + timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


# The captures asked for 2099-01-01, beyond the cap: the same request within it.
WITHIN_CAP = unleash_ts(MAX_DAYS - 1)


def capture_request(number: int) -> dict[str, Any]:
    return {**spec.capture(number)["request"]["body"], "expiresAt": WITHIN_CAP}


def same_as_pat_capture(number: int, r: httpx.Response) -> dict[str, Any]:
    """As same_as_capture, with the expiry asked for (within the cap) instead of Unleash's."""
    status, _, expected = spec.response(number)
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert spec.shape(body) == spec.shape({**expected, "expiresAt": WITHIN_CAP})
    assert spec.errors("patSchema", body) == []
    return body


async def session(client: httpx.AsyncClient, username: str) -> None:
    r = await client.post("/auth/simple/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    client.cookies.set("unleash-session", r.cookies["unleash-session"])


async def test_admin_pat_through_session(client: httpx.AsyncClient, world: World) -> None:
    admin = await admin_named_admin(world)
    await with_password(world, admin)
    await session(client, "admin")
    body = same_as_pat_capture(9, await client.post(PATS, json=capture_request(9)))
    assert body["expiresAt"] == WITHIN_CAP and body["userId"] == admin.seq
    client.cookies.clear()
    me = same_as_capture(
        10, await client.get("/api/admin/user", headers={"Authorization": body["secret"]})
    )
    assert me["user"]["id"] == admin.seq
    native = await client.get("/v1/users/self", headers=bearer(body["secret"]))
    assert native.status_code == 200, native.text
    async with world.database.transaction() as db:
        token = await db.scalar(select(Token).where(Token.name == "peer-capture"))
        assert token is not None and token.kind == "personal" and token.user_id == admin.id


async def test_viewer_pat_list_and_delete(client: httpx.AsyncClient, world: World) -> None:
    user = await viewer(world)
    await with_password(world, user)
    await session(client, "peer.user@example.com")
    created = same_as_pat_capture(32, await client.post(PATS, json=capture_request(32)))
    listed = (await client.get(PATS)).json()["pats"]
    assert [p["id"] for p in listed] == [created["id"]] and "secret" not in listed[0]
    # As Unleash's web client sends every call (a cookie-only change must say JSON: CSRF).
    as_the_ui = {"content-type": "application/json"}
    assert (await client.delete(f"{PATS}/{created['id']}", headers=as_the_ui)).status_code == 200
    assert (await client.get(PATS)).json()["pats"] == []
    client.cookies.clear()
    gone = await client.get("/api/admin/user", headers={"Authorization": created["secret"]})
    assert gone.status_code == 401 and gone.json()["name"] == "UnauthorizedError"


async def test_bad_pat_bodies_write_nothing(client: httpx.AsyncClient, world: World) -> None:
    user = await viewer(world)
    auth = {"Authorization": await world.token(user)}
    required = "property is required. It was not present on the data you sent."
    for body, detail in (
        (
            {"description": "x"},
            {"path": "/body/expiresAt", "message": f"The `/body/expiresAt` {required}"},
        ),
        (
            {"description": "x", "expiresAt": "2000-01-01T00:00:00Z"},
            {"message": "The expiry date should be in future."},
        ),
        *(
            (
                {"description": "x", "expiresAt": sent},
                {
                    "path": "/body/expiresAt",
                    "message": 'The `/body/expiresAt` property must match format "date-time". '
                    f"You sent {json.dumps(sent)}.",
                },
            )
            # no date-time to Unleash's validator: a date alone, no offset, no seconds
            for sent in ("soon", "2030-01-01", "2030-01-01T00:00:00", "2030-01-01T00:00Z")
        ),
        (
            {"description": "", "expiresAt": WITHIN_CAP},
            {"message": "PAT description cannot be empty."},
        ),
        (
            {"expiresAt": WITHIN_CAP},
            {"path": "/body/description", "message": f"The `/body/description` {required}"},
        ),
        (
            {"description": "x" * 257, "expiresAt": WITHIN_CAP},
            {"message": "The description is too long."},
        ),
        (
            {"description": ["x"], "expiresAt": WITHIN_CAP},
            {
                "path": "/body/description",
                "message": 'The `/body/description` property must be string. You sent ["x"].',
            },
        ),
    ):
        r = await client.post(PATS, headers=auth, json=body)
        assert r.status_code == 400 and r.json()["name"] == "BadDataError", body
        assert r.json()["details"] == [detail], r.text
    listed = (await client.get(PATS, headers=auth)).json()["pats"]
    assert [p["description"] for p in listed] == ["test"]  # only the factory's token
    # Deleting a PAT that is not there (Unleash: DELETE ... WHERE id AND user_id) is a 200.
    gone = await client.delete(f"{PATS}/12345", headers=auth)
    assert gone.status_code == 200 and gone.content == b""
    assert [p["description"] for p in (await client.get(PATS, headers=auth)).json()["pats"]] == [
        "test"
    ]


async def test_pat_bodies_are_read_as_unleash_reads_them(
    client: httpx.AsyncClient, world: World
) -> None:
    """createPatSchema is open (unknown properties ignored) and Unleash's validator coerces a
    scalar to the schema's type (coerce: true): a number as description is its text."""
    user = await viewer(world)
    auth = {"Authorization": await world.token(user)}
    extra = await client.post(
        PATS, headers=auth, json={"description": "extra", "expiresAt": WITHIN_CAP, "bogus": True}
    )
    assert extra.status_code == 201, extra.text
    assert "bogus" not in extra.json() and spec.errors("patSchema", extra.json()) == []
    number = await client.post(PATS, headers=auth, json={"description": 5, "expiresAt": WITHIN_CAP})
    assert number.status_code == 201 and number.json()["description"] == "5", number.text
    flag = await client.post(
        PATS, headers=auth, json={"description": False, "expiresAt": WITHIN_CAP}
    )
    assert flag.status_code == 201 and flag.json()["description"] == "false", flag.text
    listed = (await client.get(PATS, headers=auth)).json()["pats"]
    assert sorted(p["description"] for p in listed) == ["5", "extra", "false", "test"]


async def test_a_description_is_one_pat_of_a_user(client: httpx.AsyncClient, world: World) -> None:
    """Unleash refuses a second PAT with a description its user already has: 409
    NameExistsError (personal_tokens.create_personal_token(unique_name=True)); another user,
    or once the first is deleted, may."""
    user = await viewer(world)
    auth = {"Authorization": await world.token(user)}
    body = {"description": "ci", "expiresAt": WITHIN_CAP}
    first = await client.post(PATS, headers=auth, json=body)
    assert first.status_code == 201, first.text
    again = await client.post(PATS, headers=auth, json=body)
    error = unleash_error(again, 409, "NameExistsError", "PAT description already exists.")
    assert error["details"] == [{"message": "PAT description already exists."}]
    async with world.database.transaction() as db:
        assert await db.scalar(select(func.count(Token.id)).where(Token.name == "ci")) == 1
    other = {"Authorization": await world.token(await world.user("other.pat@example.com"))}
    assert (await client.post(PATS, headers=other, json=body)).status_code == 201
    assert (await client.delete(f"{PATS}/{first.json()['id']}", headers=auth)).status_code == 200
    assert (await client.post(PATS, headers=auth, json=body)).status_code == 201


async def test_an_api_token_has_no_pats(client: httpx.AsyncClient, world: World) -> None:
    """Unleash: "PATs require an authenticated user." (403 ForbiddenError) to a caller that
    is no user."""
    made = await world.api_token(await world.org())
    auth = {"Authorization": made.secret}
    for r in (
        await client.get(PATS, headers=auth),
        await client.post(PATS, headers=auth, json={"description": "x", "expiresAt": WITHIN_CAP}),
        await client.delete(f"{PATS}/1", headers=auth),
    ):
        unleash_error(r, 403, "ForbiddenError", "PATs require an authenticated user.")


async def test_pat_expiry_is_capped_as_on_every_face(
    client: httpx.AsyncClient, world: World
) -> None:
    """Finding 10: an Unleash PAT took any `expiresAt` (9999-12-31); now the one cap of
    identity.personal_tokens: beyond it Unleash's 400 and nothing written, within it a PAT."""
    user = await viewer(world)
    auth = {"Authorization": await world.token(user)}
    message = f"The expiry date should be within {MAX_DAYS} days."
    for too_far in ("9999-12-31T00:00:00.000Z", unleash_ts(MAX_DAYS + 1)):
        r = await client.post(PATS, headers=auth, json={"description": "far", "expiresAt": too_far})
        assert spec.error(r, 400) == spec.bad_data(message)
    async with world.database.transaction() as db:
        assert await db.scalar(select(func.count(Token.id)).where(Token.name == "far")) == 0
    r = await client.post(PATS, headers=auth, json={"description": "near", "expiresAt": WITHIN_CAP})
    assert r.status_code == 201, r.text
    assert r.json()["expiresAt"] == WITHIN_CAP and r.json()["description"] == "near"


async def test_pat_of_an_elevated_session_is_not_elevated(
    strict: httpx.AsyncClient, world: World
) -> None:
    """Elevation belongs to the session that elevated: a PAT its user mints from that very
    session cannot hand out an Admin root role (403 in Unleash's body, nothing written),
    while the session itself can."""
    admin = await admin_named_admin(world)
    await with_password(world, admin)
    secret = await sign_in(strict, "admin", PASSWORD)
    await elevate(strict, secret, PASSWORD)
    r = await strict.post(
        PATS, headers=cookie(secret), json={"description": "d", "expiresAt": WITHIN_CAP}
    )
    assert r.status_code == 201, r.text
    pat = {"Authorization": r.json()["secret"]}
    boss = {"email": "boss@example.com", "rootRole": 1}
    r = await strict.post("/api/admin/user-admin", headers=pat, json=boss)
    assert r.status_code == 403, r.text
    assert r.json()["name"] == "NoAccessError" and "elevated" in r.json()["message"]
    async with world.database.transaction() as db:
        assert await db.scalar(select(User).where(User.email == "boss@example.com")) is None
    r = await strict.post("/api/admin/user-admin", headers=cookie(secret), json=boss)
    assert r.status_code == 201, r.text
