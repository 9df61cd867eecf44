"""Rule: every refused password, through any face and any credential, is counted and audited
the same way, and rendered by the face's one error table (issue 14, findings 7 and 11).

* `auth.login.failure` (elevation: `auth.elevate.failure`) with details {method, reason},
  targeting the account when it exists; the failure counts toward the lockout; the wire body
  of the refusal is the face's, as before.
* A known account with a wrong password runs exactly the same SQL statements, in the same
  order, as an unknown account (the timing itself is measured by bench/signin_timing.py; a
  test that timed would be flaky)."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent, User
from tenantry.directory import accounts
from tenantry.faces.unleash.errors import SIGN_IN_REFUSED
from tenantry.identity.passwords import Hasher
from tenantry.identity.principals import system_principal
from tests.factories import World, bearer

PASSWORD = "violet-staircase-42"
WRONG = "not-the-password-13"
KNOWN = "ops@example.com"
UNKNOWN = "ghost@example.com"
Send = Callable[[httpx.AsyncClient, str, str], Awaitable[httpx.Response]]


async def _native(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    body = {"username": username, "password": password}
    return await client.post("/tenantry/v1/auth/login", json=body)


async def _ece_login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    body = {"username": username, "password": password}
    return await client.post("/api/v1/users/auth/_login", json=body)


async def _ece_basic(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return await client.get("/api/v1/users/auth", headers={"Authorization": f"Basic {pair}"})


async def _unleash(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    body = {"username": username, "password": password}
    return await client.post("/auth/simple/login", json=body)


def _problem(r: httpx.Response) -> None:
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": "invalid username or password",
        "instance": "/tenantry/v1/auth/login",
        "requestId": r.headers["x-request-id"],
    }


def _ece(code: str, message: str) -> Callable[[httpx.Response], None]:
    def check(r: httpx.Response) -> None:
        assert r.status_code == 401
        assert r.json() == {"errors": [{"code": code, "message": message}]}
        assert r.headers["x-cloud-error-codes"] == code

    return check


def _unleash_body(r: httpx.Response) -> None:
    assert r.status_code == 401 and "set-cookie" not in r.headers
    body = r.json()  # raised by Unleash's user service: no id
    message = SIGN_IN_REFUSED  # Unleash's PasswordMismatch, whatever the reason
    assert body == {
        "name": "PasswordMismatch",
        "message": message,
        "details": [{"message": message}],
    }


@dataclass(frozen=True)
class Path_:
    name: str
    send: Send
    method: str  # details.method of the audit event
    refused: Callable[[httpx.Response], None]


PATHS = [
    Path_("native", _native, "login", _problem),
    Path_(
        "ece-login",
        _ece_login,
        "login",
        _ece("root.unauthenticated", "the supplied authentication is invalid"),
    ),
    Path_(
        "ece-basic",
        _ece_basic,
        "basic",
        _ece("root.unauthorized", "the supplied credentials are invalid"),
    ),
    Path_("unleash", _unleash, "login", _unleash_body),
]
IDS = [p.name for p in PATHS]


async def with_password(world: World, username: str = KNOWN) -> User:
    user = await world.user(username)
    async with world.database.transaction() as db:
        await accounts.set_password(db, Hasher(2, 19456, 1), system_principal(), user.id, PASSWORD)
    return user


async def _events(database: Database, action: str) -> list[AuditEvent]:
    async with database.transaction(write=False) as db:
        rows = await db.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return list(rows)


async def _attempts(database: Database, user: User) -> int:
    async with database.transaction(write=False) as db:
        stored = await db.scalar(select(User).where(User.id == user.id))
        assert stored is not None
        return stored.login_attempts


@pytest.mark.parametrize("path", PATHS, ids=IDS)
async def test_every_refused_password_is_counted_and_audited_alike(
    client: httpx.AsyncClient, world: World, path: Path_
) -> None:
    user = await with_password(world)
    path.refused(await path.send(client, KNOWN, WRONG))
    path.refused(await path.send(client, UNKNOWN, WRONG))
    assert await _attempts(world.database, user) == 1
    known, unknown = await _events(world.database, "auth.login.failure")
    assert (known.actor_type, known.target_type, known.target_id) == ("anonymous", "user", user.id)
    assert known.details == {"method": path.method, "reason": "wrong_password"}
    assert known.ip == "127.0.0.1" and known.request_id
    assert (unknown.target_type, unknown.target_id) == ("user", None)
    assert unknown.details == {"method": path.method, "reason": "unknown_account"}
    assert WRONG not in str(known.details) + str(unknown.details)
    ok = await path.send(client, KNOWN, PASSWORD)  # the right password still works
    assert ok.status_code == 200, ok.text
    assert await _attempts(world.database, user) == 0


@pytest.mark.parametrize("path", PATHS, ids=IDS)
async def test_a_locked_account_answers_like_a_wrong_password(
    client: httpx.AsyncClient, world: World, path: Path_
) -> None:
    """Through HTTP Basic too: the failures lock the account (audited once), and a locked
    account's right password is refused like a wrong one, with reason `locked`."""
    await with_password(world)
    threshold = 5  # the default policy
    for _ in range(threshold):
        path.refused(await path.send(client, KNOWN, WRONG))
    assert len(await _events(world.database, "auth.lockout")) == 1
    path.refused(await path.send(client, KNOWN, PASSWORD))
    last = (await _events(world.database, "auth.login.failure"))[-1]
    assert last.details == {"method": path.method, "reason": "locked"}


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    """The SQL text of every statement the app sends while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)


@pytest.mark.parametrize("path", PATHS, ids=IDS)
async def test_a_wrong_password_runs_the_statements_of_an_unknown_account(
    client: httpx.AsyncClient, world: World, path: Path_
) -> None:
    """Finding 11: the known account's refusal used to add an UPDATE of its failure count
    (and, through HTTP Basic, a commit of its own); now both run the same statements in the
    same order (the same number, kinds and text), so they cost the same."""
    await with_password(world)
    await path.send(client, UNKNOWN, WRONG)  # warm what is prepared once (the dummy hash)
    with statements(world.database) as known:
        path.refused(await path.send(client, KNOWN, WRONG))
    with statements(world.database) as unknown:
        path.refused(await path.send(client, UNKNOWN, WRONG))
    assert known and known == unknown
    kinds = [s.split(None, 1)[0].upper() for s in known]
    assert "UPDATE" in kinds or "WITH" in kinds  # the failure is counted in SQL


@pytest.mark.parametrize("face", ["native", "ece"])
async def test_a_refused_elevation_is_counted_and_audited(
    client: httpx.AsyncClient, world: World, face: str
) -> None:
    user = await with_password(world)
    login = await (_native if face == "native" else _ece_login)(client, KNOWN, PASSWORD)
    session = login.json()["token"]
    if face == "native":
        r = await client.post(
            "/tenantry/v1/auth/elevate", json={"password": WRONG}, headers=bearer(session)
        )
        assert r.status_code == 403
        assert r.json()["detail"] == "the password is incorrect" and r.json()["status"] == 403
    else:
        r = await client.post(
            "/api/v1/users/auth/_elevate", json={"token": WRONG}, headers=bearer(session)
        )
        assert r.status_code == 400
        error = {"code": "authc.invalid_token", "message": "the password is incorrect"}
        assert r.json() == {"errors": [error | {"fields": ["token"]}]}
        assert r.headers["x-cloud-error-codes"] == "authc.invalid_token"
    assert await _attempts(world.database, user) == 1
    (failed,) = await _events(world.database, "auth.elevate.failure")
    assert (failed.actor_id, failed.target_id) == (user.id, user.id)
    assert failed.details == {"method": "elevate", "reason": "wrong_password"}


def test_no_face_commits_or_renders_a_refusal_itself() -> None:
    """Refusals reach the client through each face's one error table, and the transaction is
    the request scope's: no `commit()` and no `errors.render(...)` in a face's routes."""
    faces = Path(__file__).parents[2] / "src" / "tenantry" / "faces"
    offenders = [
        f"{path.relative_to(faces)}: {needle}"
        for path in faces.rglob("*.py")
        for needle in (".commit(", "errors.render(")
        if needle in path.read_text()
    ]
    assert offenders == []
