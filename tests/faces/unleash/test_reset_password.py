"""POST /api/admin/user-admin/reset-password {id: <e-mail>} (issue 16): an administrator's
single-use reset link (directory/password_reset.py), `{resetPasswordUrl}` with the secret in
the URL's fragment as Tenantry's invite and e-mail links carry theirs (docs/security.md),
mailed to the user; used with POST /tenantry/v1/password/reset, it sets the password under
the policy and ends the user's sessions. Only the secret's digest is stored; it is never in an
audit event."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from tenantry.app import create_app
from tenantry.clock import utcnow
from tenantry.config import Settings
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent, User
from tenantry.identity.tokens import digest
from tests.faces.errors import unleash_error
from tests.faces.test_address_identity import FakeMailer
from tests.faces.unleash import spec
from tests.faces.unleash.conftest import cookie, elevate, sign_in
from tests.faces.unleash.test_me import PASSWORD, admin_named_admin, viewer, with_password
from tests.factories import World

RESET = "/api/admin/user-admin/reset-password"
USE = "/tenantry/v1/password/reset"
NEW = "Brand-New-Passw0rd!"
REFUSED = "this link is not valid: it is unknown, expired or already used"


@pytest.fixture
def mailer() -> FakeMailer:
    return FakeMailer()


@pytest.fixture
async def client(
    settings: Settings, database: Database, mailer: FakeMailer
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database, mailer)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def secret_of(url: str) -> str:
    found = re.fullmatch(r"[^#?]+/reset-password#(tnr_[A-Za-z0-9_-]{40,})", url)
    assert found is not None, url  # the secret in the fragment, never in a query
    return found.group(1)


async def test_a_reset_link_sets_the_password_once(
    client: httpx.AsyncClient, world: World, mailer: FakeMailer
) -> None:
    admin = {"Authorization": await world.token(await admin_named_admin(world))}
    user = await viewer(world)
    await with_password(world, user)
    session = cookie(await sign_in(client, "peer.user@example.com", PASSWORD))
    r = await client.post(RESET, headers=admin, json={"id": "Peer.User@example.com"})
    assert r.status_code == 200, r.text
    assert spec.errors("resetPasswordSchema", r.json()) == []
    secret = secret_of(r.json()["resetPasswordUrl"])
    [mail] = mailer.sent
    assert mail.to == "peer.user@example.com" and r.json()["resetPasswordUrl"] in mail.text
    async with world.database.transaction() as db:
        stored = await db.scalar(select(User).where(User.id == user.id))
        events = list(await db.scalars(select(AuditEvent).where(AuditEvent.target_id == user.id)))
    assert stored is not None and stored.password_reset_digest == digest(secret)
    assert all(secret not in json.dumps(e.details) for e in events)
    assert "user.password.reset_requested" in [e.action for e in events]
    # The old password still works until the link is used.
    assert (await client.get("/api/admin/user", headers=session)).status_code == 200
    weak = await client.post(USE, json={"secret": secret, "password": "short"})
    assert weak.status_code == 400, weak.text  # the policy, and the link stays usable
    # The password history holds for the link's holder too (identity/password_history.py).
    reused = await client.post(USE, json={"secret": secret, "password": PASSWORD})
    assert reused.status_code == 400, reused.text
    assert [e["field"] for e in reused.json()["errors"]] == ["password"], reused.text
    r = await client.post(USE, json={"secret": secret, "password": NEW})
    assert r.status_code == 200, r.text
    assert secret not in r.text
    again = await client.post(USE, json={"secret": secret, "password": NEW + "x"})
    assert again.status_code == 404 and again.json()["detail"] == REFUSED
    assert (await client.get("/api/admin/user", headers=session)).status_code == 401
    ok = {"username": "peer.user@example.com", "password": NEW}
    assert (await client.post("/auth/simple/login", json=ok)).status_code == 200
    async with world.database.transaction() as db:
        actions = list(
            await db.scalars(
                select(AuditEvent.details).where(
                    AuditEvent.target_id == user.id, AuditEvent.action == "user.password.set"
                )
            )
        )
    assert actions[-1] == {"self": True, "via": "reset link"}


async def test_a_new_link_replaces_the_old_and_links_expire(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = {"Authorization": await world.token(await admin_named_admin(world))}
    user = await viewer(world)
    first = secret_of(
        (await client.post(RESET, headers=admin, json={"id": "peer.user@example.com"})).json()[
            "resetPasswordUrl"
        ]
    )
    async with world.database.transaction() as db:  # the next minute
        await db.execute(update(User).where(User.id == user.id).values(password_reset_digest=None))
    del first
    other = await world.user("second@example.com", email="second@example.com")
    second = secret_of(
        (await client.post(RESET, headers=admin, json={"id": "second@example.com"})).json()[
            "resetPasswordUrl"
        ]
    )
    async with world.database.transaction() as db:
        await db.execute(
            update(User)
            .where(User.id == other.id)
            .values(password_reset_expires_at=utcnow() - timedelta(seconds=1))
        )
    r = await client.post(USE, json={"secret": second, "password": NEW})
    assert r.status_code == 404 and r.json()["detail"] == REFUSED
    for made_up in ("tnr_" + "A" * 43, "nope", "tnt_" + "A" * 43):
        r = await client.post(USE, json={"secret": made_up, "password": NEW})
        assert r.status_code == 404 and r.json()["detail"] == REFUSED


async def test_who_may_ask_and_how_unleash_refuses(client: httpx.AsyncClient, world: World) -> None:
    admin = {"Authorization": await world.token(await admin_named_admin(world))}
    await viewer(world)
    r = await client.post(RESET, headers=admin, json={"id": "nobody@example.com"})
    body = unleash_error(r, 404, "NotFoundError", "Could not find nobody@example.com")
    assert "id" not in body  # raised by Unleash's service: no id
    r = await client.post(RESET, headers=admin, json={})
    assert spec.error(r, 400)["details"][0]["path"] == "/body/id"
    r = await client.post(RESET, headers=admin, json={"id": "peer.user@example.com", "x": 1})
    assert spec.error(r, 400)["details"][0]["path"] == "/body/x"
    someone = {"Authorization": await world.token(await world.user("v.reset@example.com"))}
    r = await client.post(RESET, headers=someone, json={"id": "peer.user@example.com"})
    unleash_error(r, 403, "PermissionError")
    unleash_error(await client.post(RESET, json={"id": "x"}), 401, "AuthenticationRequired")
    # one a minute per user, as Unleash
    assert (
        await client.post(RESET, headers=admin, json={"id": "peer.user@example.com"})
    ).status_code == 200
    r = await client.post(RESET, headers=admin, json={"id": "peer.user@example.com"})
    unleash_error(r, 429, "RateLimitError")


async def test_asking_needs_elevation_when_required(
    strict: httpx.AsyncClient, world: World
) -> None:
    admin = await admin_named_admin(world)
    await with_password(world, admin)
    await viewer(world)
    secret = await sign_in(strict, "admin", PASSWORD)
    r = await strict.post(RESET, headers=cookie(secret), json={"id": "peer.user@example.com"})
    assert spec.error(r, 403)["name"] == "NoAccessError"
    await elevate(strict, secret, PASSWORD)
    r = await strict.post(RESET, headers=cookie(secret), json={"id": "peer.user@example.com"})
    assert r.status_code == 200, r.text
