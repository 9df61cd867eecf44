"""A login name that is the account's address follows the address (directory/users.py
follow_address, issue 16): after an operator's change of someone's e-mail (any face), or a
confirmed self-service change, the account signs in with the new address, the old one is free
for a new account, and a name another account holds is refused. A login name that is not the
address (Unleash's `admin`, ECE's `ann`) stays. An unconfirmed self-service change moves
nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.db.engine import Database
from tenantry.faces.unleash.errors import SIGN_IN_REFUSED
from tests.faces.errors import unleash_error
from tests.faces.test_address_identity import FakeMailer
from tests.faces.unleash import spec
from tests.faces.unleash.test_me import PASSWORD, with_password
from tests.faces.unleash.test_users import UA, admin_token
from tests.factories import World, bearer

NATIVE = "/tenantry/v1"


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


async def signs_in(client: httpx.AsyncClient, name: str) -> bool:
    r = await client.post("/auth/simple/login", json={"username": name, "password": PASSWORD})
    client.cookies.clear()
    if r.status_code != 200:
        unleash_error(r, 401, "PasswordMismatch", SIGN_IN_REFUSED)
    return r.status_code == 200


async def test_unleash_admin_changes_the_address_and_the_login_follows(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = await admin_token(world)
    body = {"email": "old.addr@example.com", "name": "Mover", "rootRole": 3}
    created = (await client.post(UA, headers=auth, json=body)).json()
    r = await client.post(
        f"{UA}/{created['id']}/change-password", headers=auth, json={"password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    assert await signs_in(client, "old.addr@example.com")
    r = await client.put(
        f"{UA}/{created['id']}", headers=auth, json={"email": "New.Addr@example.com"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "New.Addr@example.com" and "username" not in r.json()
    assert await signs_in(client, "new.addr@example.com")
    assert not await signs_in(client, "old.addr@example.com")
    # The old address is free: a new user may have it.
    again = await client.post(
        UA, headers=auth, json={"email": "old.addr@example.com", "rootRole": 3}
    )
    assert again.status_code == 201, again.text
    # Another account's login name is refused, and nothing changes.
    r = await client.put(
        f"{UA}/{created['id']}", headers=auth, json={"email": "old.addr@example.com"}
    )
    assert spec.error(r, 400) == spec.bad_data("User already exists")
    got = (await client.get(f"{UA}/{created['id']}", headers=auth)).json()
    assert got["email"] == "New.Addr@example.com"
    assert await signs_in(client, "new.addr@example.com")


async def test_a_login_name_that_is_not_the_address_stays(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = await admin_token(world)
    body = {"username": "mover", "email": "m1@example.com", "rootRole": 3}
    created = (await client.post(UA, headers=auth, json=body)).json()
    await client.post(
        f"{UA}/{created['id']}/change-password", headers=auth, json={"password": PASSWORD}
    )
    r = await client.put(f"{UA}/{created['id']}", headers=auth, json={"email": "m2@example.com"})
    assert r.status_code == 200 and r.json()["username"] == "mover"
    assert await signs_in(client, "mover")


async def test_through_the_native_face_too(client: httpx.AsyncClient, world: World) -> None:
    """The rule is the domain's: a native administrator's change moves the login as well."""
    admin = await world.admin()
    token = await world.token(admin)
    user = await world.user("n.old@example.com", "Native")
    await with_password(world, user)
    r = await client.patch(
        f"{NATIVE}/users/{user.id}", headers=bearer(token), json={"email": "n.new@example.com"}
    )
    assert r.status_code == 200, r.text
    assert await signs_in(client, "n.new@example.com")
    assert not await signs_in(client, "n.old@example.com")


async def test_self_service_moves_the_login_only_once_confirmed(
    client: httpx.AsyncClient,
    world: World,
    mailer: FakeMailer,
) -> None:
    user = await world.user("s.old@example.com", "Self")
    await with_password(world, user)
    token = await world.token(user)
    r = await client.post(
        f"{NATIVE}/users/me/email", headers=bearer(token), json={"email": "s.new@example.com"}
    )
    assert r.status_code == 202, r.text
    assert await signs_in(client, "s.old@example.com")  # pending: nothing moved
    assert not await signs_in(client, "s.new@example.com")
    found = re.search(r"#(tne_[A-Za-z0-9_-]+)", mailer.sent[-1].text)
    assert found is not None
    r = await client.post(f"{NATIVE}/email/confirm", json={"secret": found.group(1)})
    assert r.status_code == 200, r.text
    assert await signs_in(client, "s.new@example.com")
    assert not await signs_in(client, "s.old@example.com")


async def test_a_confirmed_change_to_a_taken_login_name_keeps_the_login_name(
    client: httpx.AsyncClient,
    world: World,
    mailer: FakeMailer,
) -> None:
    """Confirming an address that became another account's login name in the meantime (an
    invite's pending account, say) takes the address, verified, and keeps the login name."""
    user = await world.user("t.old@example.com", "Self")
    await with_password(world, user)
    token = await world.token(user)
    r = await client.post(
        f"{NATIVE}/users/me/email", headers=bearer(token), json={"email": "t.new@example.com"}
    )
    assert r.status_code == 202, r.text
    await world.user("t.new@example.com")
    found = re.search(r"#(tne_[A-Za-z0-9_-]+)", mailer.sent[-1].text)
    assert found is not None
    r = await client.post(f"{NATIVE}/email/confirm", json={"secret": found.group(1)})
    assert r.status_code == 200, r.text
    assert await signs_in(client, "t.old@example.com")
    r = await client.get("/api/admin/user", headers={"Authorization": token})
    assert r.status_code == 200 and r.json()["user"]["email"] == "t.new@example.com", r.text
    assert r.json()["user"]["username"] == "t.old@example.com"
