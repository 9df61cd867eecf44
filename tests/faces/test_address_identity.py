"""Address identity through the faces (issue 14, findings 2, 3 and 6): one key that never merges
two mailboxes, invites bound only to verified addresses, look-alikes and address lists refused."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.db.engine import Database
from tenantry.db.models import Invite, Membership, Organization, User
from tenantry.mail import Mail
from tests.faces.errors import native_error
from tests.factories import World, bearer
from tests.spec import assert_astro

NATIVE = "/tenantry/v1"
ACCEPT = f"{NATIVE}/invites/accept"
PASSWORD = "violet-staircase-42"
OTHER_PASSWORD = "copper-lantern-77"
# Why an invite is refused (directory/invite_accept.py): a new account's link sent by someone
# signed in; an address that is another account's login name.
SIGNED_IN_AS_ANOTHER = "the request is signed in as another one"
NAME_TAKEN = "this address is the login name of another account"


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[Mail] = []

    async def send(self, to: str, subject: str, text: str) -> None:
        self.sent.append(Mail(to, subject, text))


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


def link_secret(mail: Mail) -> str:
    found = re.search(r"#(tni_[A-Za-z0-9_-]+)", mail.text)
    assert found is not None, mail.text
    return found.group(1)


async def post_invite(
    client: httpx.AsyncClient, token: str, org: Organization, email: str
) -> httpx.Response:
    return await client.post(
        f"/v1/organizations/{org.id}/invites",
        json={"inviteeEmail": email, "role": "ORGANIZATION_MEMBER"},
        headers=bearer(token),
    )


async def invite_ok(
    client: httpx.AsyncClient, mailer: FakeMailer, token: str, org: Organization, email: str
) -> tuple[dict[str, Any], str]:
    """The Astro invite body and the secret from the mail it sent."""
    r = await post_invite(client, token, org, email)
    assert r.status_code == 200, r.text
    assert_astro(r.json(), "Invite")
    return r.json(), link_secret(mailer.sent[-1])


async def owner_of(world: World, name: str) -> tuple[Organization, User, str]:
    org = await world.org(name)
    owner, token = await world.member(org, "ORGANIZATION_OWNER")
    return org, owner, token


async def load_user(world: World, user_id: str) -> User:
    async with world.database.transaction() as db:
        user = await db.scalar(select(User).where(User.id == user_id))
    assert user is not None
    return user


async def counts(world: World) -> tuple[int, int, int]:
    async with world.database.transaction() as db:
        return (
            await db.scalar(select(func.count()).select_from(User)) or 0,
            await db.scalar(select(func.count()).select_from(Invite)) or 0,
            await db.scalar(select(func.count()).select_from(Membership)) or 0,
        )


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> str | None:
    r = await client.post(f"{NATIVE}/auth/login", json={"username": username, "password": password})
    if r.status_code != 200:
        return None
    user_id: str = r.json()["userId"]
    return user_id


# --- finding 2: ß and ss are two mailboxes -------------------------------------------------


async def test_strasse_and_strasse_with_eszett_are_two_pending_accounts(
    client: httpx.AsyncClient, world: World, mailer: FakeMailer
) -> None:
    org_a, _, token_a = await owner_of(world, "A")
    org_b, _, token_b = await owner_of(world, "B")
    body_b, secret_b = await invite_ok(client, mailer, token_b, org_b, "bob@strasse.test")
    body_a, secret_a = await invite_ok(client, mailer, token_a, org_a, "bob@straße.test")
    assert body_a["userId"] != body_b["userId"]
    assert [m.to for m in mailer.sent] == ["bob@strasse.test", "bob@straße.test"]

    r = await client.post(ACCEPT, json={"secret": secret_a, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["userId"] == body_a["userId"] and r.json()["organizationId"] == org_a.id
    b_account = await load_user(world, body_b["userId"])
    assert b_account.status == "PENDING" and b_account.password_hash is None
    assert b_account.username == "bob@strasse.test" and not b_account.email_verified

    r = await client.post(ACCEPT, json={"secret": secret_b, "password": OTHER_PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["userId"] == body_b["userId"] and r.json()["organizationId"] == org_b.id
    assert await sign_in(client, "bob@straße.test", PASSWORD) == body_a["userId"]
    assert await sign_in(client, "Bob@STRASSE.test", OTHER_PASSWORD) == body_b["userId"]
    assert await sign_in(client, "bob@strasse.test", PASSWORD) is None
    for user_id in (body_a["userId"], body_b["userId"]):
        assert (await load_user(world, user_id)).email_verified  # accepting proved the mailbox


# --- finding 3: a self-asserted address captures nothing -----------------------------------


async def _ece_patch_self(client: httpx.AsyncClient, token: str, body: dict[str, Any]) -> int:
    r = await client.patch("/api/v1/user", json=body, headers=bearer(token))
    assert r.status_code < 500, r.text
    return r.status_code


async def _self_invites(client: httpx.AsyncClient, token: str) -> list[Any]:
    r = await client.get("/v1/users/self", headers=bearer(token))
    assert r.status_code == 200, r.text
    invites: list[Any] = r.json()["invites"]
    return invites


async def test_an_email_set_on_yourself_does_not_capture_an_earlier_invite(
    client: httpx.AsyncClient, world: World, mailer: FakeMailer
) -> None:
    org_a, _, _ = await owner_of(world, "A")
    org_b, _, token_b = await owner_of(world, "B")
    attacker, token = await world.member(org_a)
    body, secret = await invite_ok(client, mailer, token_b, org_b, "victim@x.test")
    assert await _ece_patch_self(client, token, {"email": "victim@x.test"}) == 200
    assert await _self_invites(client, token) == []
    r = await client.post(ACCEPT, json={"secret": secret}, headers=bearer(token))
    assert r.status_code == 403, r.text  # bound to the pending account, not to the caller
    native_error(r, 403, part=SIGNED_IN_AS_ANOTHER)
    async with world.database.transaction() as db:
        invite = await db.get(Invite, body["inviteId"])
        member = await db.get(Membership, (org_b.id, attacker.id))
    assert invite is not None and invite.user_id == body["userId"] != attacker.id
    assert invite.accepted_at is None and member is None


async def test_an_email_set_on_yourself_does_not_capture_a_later_invite(
    client: httpx.AsyncClient, world: World, mailer: FakeMailer
) -> None:
    org_a, _, _ = await owner_of(world, "A")
    org_b, _, token_b = await owner_of(world, "B")
    attacker, token = await world.member(org_a)
    assert await _ece_patch_self(client, token, {"email": "Victim@X.test"}) == 200
    after = await load_user(world, attacker.id)  # the address waits for its link
    assert after.email == attacker.email and after.pending_email is not None
    assert after.pending_email.lower() == "victim@x.test"
    body, secret = await invite_ok(client, mailer, token_b, org_b, "victim@x.test")
    assert body["userId"] != attacker.id and body["invitee"]["username"] == "victim@x.test"
    assert await _self_invites(client, token) == []
    r = await client.post(ACCEPT, json={"secret": secret}, headers=bearer(token))
    assert r.status_code == 403, r.text
    native_error(r, 403, part=SIGNED_IN_AS_ANOTHER)
    # the mailbox's owner, with the link, gets an account of their own
    r = await client.post(ACCEPT, json={"secret": secret, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["userId"] == body["userId"]
    async with world.database.transaction() as db:
        assert await db.get(Membership, (org_b.id, attacker.id)) is None


async def test_renaming_yourself_to_an_address_does_not_capture_an_invite(
    client: httpx.AsyncClient, world: World, mailer: FakeMailer
) -> None:
    org_a, _, _ = await owner_of(world, "A")
    org_b, _, token_b = await owner_of(world, "B")
    attacker, token = await world.member(org_a, username="mallory")
    unknown, _ = await invite_ok(client, mailer, token_b, org_b, "nobody@x.test")
    renamed = await _ece_patch_self(client, token, {"user_name": "victim@x.test"})
    body, secret = await invite_ok(client, mailer, token_b, org_b, "victim@x.test")
    assert body["userId"] != attacker.id
    # the inviter learns nothing: the answer looks like the one for an unknown address
    assert set(body) == set(unknown) and set(body["invitee"]) == set(unknown["invitee"])
    assert body["invitee"]["username"] == "victim@x.test" and body["invitee"]["fullName"] == ""
    assert await _self_invites(client, token) == []
    r = await client.post(ACCEPT, json={"secret": secret}, headers=bearer(token))
    assert r.status_code == 403, r.text
    native_error(r, 403, part=SIGNED_IN_AS_ANOTHER)
    r = await client.post(ACCEPT, json={"secret": secret, "password": PASSWORD})
    if renamed == 200:  # the address is the attacker's login name: the account waits for it
        assert r.status_code == 409, r.text
        native_error(r, 409, part=NAME_TAKEN)
        assert (await load_user(world, body["userId"])).status == "PENDING"
    else:
        assert r.status_code == 200 and r.json()["userId"] == body["userId"]
    async with world.database.transaction() as db:
        assert await db.get(Membership, (org_b.id, attacker.id)) is None


async def _rename(world: World, user: User, username: str) -> None:
    """As a face that writes the column would (identity.lookup keeps the key in step)."""
    async with world.database.transaction() as db:
        row = await db.scalar(select(User).where(User.id == user.id))
        assert row is not None
        row.username = username


async def test_an_address_that_is_someone_elses_login_name_gets_an_account_of_its_own(
    client: httpx.AsyncClient, world: World, mailer: FakeMailer
) -> None:
    org_a, _, _ = await owner_of(world, "A")
    org_b, _, token_b = await owner_of(world, "B")
    squatter, token = await world.member(org_a, username="mallory")
    await _rename(world, squatter, "Victim@x.test")
    body, secret = await invite_ok(client, mailer, token_b, org_b, "victim@x.test")
    assert body["userId"] != squatter.id and mailer.sent[-1].to == "victim@x.test"
    assert await _self_invites(client, token) == []
    stand_in = await load_user(world, body["userId"])
    assert stand_in.status == "PENDING" and stand_in.username_key.startswith("\x01")
    r = await client.post(ACCEPT, json={"secret": secret}, headers=bearer(token))
    assert r.status_code == 403, r.text
    native_error(r, 403, part=SIGNED_IN_AS_ANOTHER)
    r = await client.post(ACCEPT, json={"secret": secret, "password": PASSWORD})
    assert r.status_code == 409, r.text  # the name is taken: nothing changes
    native_error(r, 409, part=NAME_TAKEN)
    assert (await load_user(world, stand_in.id)).status == "PENDING"
    await _rename(world, squatter, "mallory")
    r = await client.post(ACCEPT, json={"secret": secret, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["userId"] == stand_in.id
    assert await sign_in(client, "victim@x.test", PASSWORD) == stand_in.id


async def test_a_verified_holder_gets_the_invite_and_sees_it(
    client: httpx.AsyncClient, world: World, mailer: FakeMailer
) -> None:
    org, _, token = await owner_of(world, "B")
    jane = await world.user("jane@acme.test", "Jane")  # an operator's word: verified
    body, secret = await invite_ok(client, mailer, token, org, "JANE@acme.test")
    assert body["userId"] == jane.id
    jane_token = await world.token(jane)
    assert [i["inviteId"] for i in await _self_invites(client, jane_token)] == [body["inviteId"]]
    r = await client.post(ACCEPT, json={"secret": secret}, headers=bearer(jane_token))
    assert r.status_code == 200 and r.json()["userId"] == jane.id


# --- finding 6: look-alikes, invisible characters, address lists ---------------------------

LOOK_ALIKES = [
    "\u0430dmin",  # Cyrillic a
    "adm\u0131n",  # dotless i
    "\uff41dmin",  # full-width a
    "admin\u200b",  # trailing zero-width space
    "ad\u200dmin",  # zero-width joiner
    "p\u0430ypal@x.test",  # Cyrillic a in an address
    "bob@\u0430pple.test",  # and in its domain
    "bob@xn--pple-43d.test",  # the same domain in punycode
    "\u03bfscar@x.test",  # Greek omicron
]
NOT_ONE_MAILBOX = ["a,b@x.test", "a;b@x.test", '"x"<y@x.test>', "x <y@x.test>", "a@b@x.test"]


async def test_look_alike_usernames_and_addresses_are_refused_by_native(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = bearer(await world.token(await world.admin()))
    before = await counts(world)
    for name in LOOK_ALIKES + NOT_ONE_MAILBOX:
        r = await client.post(f"{NATIVE}/users", json={"username": name}, headers=headers)
        assert r.status_code == 400, (name, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in r.json()["errors"]] == ["username"], name
        r = await client.post(
            f"{NATIVE}/users", json={"username": "plain", "email": name}, headers=headers
        )
        assert r.status_code == 400, (name, r.text)
        assert [e["field"] for e in r.json()["errors"]] == ["email"], name
    assert await counts(world) == before
    for name in ("müller@bücher.test", "jørgen", "łukasz", "æble", "Straße", "José"):
        r = await client.post(f"{NATIVE}/users", json={"username": name}, headers=headers)
        assert r.status_code == 201, (name, r.text)


async def test_look_alike_and_list_invites_are_refused_by_astro(
    client: httpx.AsyncClient, world: World, mailer: FakeMailer
) -> None:
    org, _, token = await owner_of(world, "A")
    before = await counts(world)
    for address in LOOK_ALIKES[5:] + NOT_ONE_MAILBOX + ["bob@x.test\u200b"]:
        r = await post_invite(client, token, org, address)
        assert r.status_code == 400, (address, r.text)
        assert_astro(r.json(), "Error")
        assert [e["field"] for e in r.json()["fieldErrors"]] == ["inviteeEmail"], address
    assert await counts(world) == before and mailer.sent == []


async def test_a_look_alike_secret_or_name_signs_nobody_in(
    client: httpx.AsyncClient, world: World
) -> None:
    from tenantry.directory import accounts
    from tenantry.identity.passwords import Hasher
    from tenantry.identity.principals import system_principal

    admin = await world.user("admin")
    async with world.database.transaction() as db:
        await accounts.set_password(db, Hasher(2, 19456, 1), system_principal(), admin.id, PASSWORD)
    assert await sign_in(client, "ADMIN", PASSWORD) == admin.id
    for name in ("\u0430dmin", "admin\u200b", "adm\u0131n"):
        assert await sign_in(client, name, PASSWORD) is None
