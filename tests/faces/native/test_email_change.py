"""Self-service e-mail change: pending until the link mailed to the new address confirms it;
the old address stays meanwhile; the link is single-use, expires, and its secret appears in no
answer and no audit event."""

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
from tenantry.mail import Mail
from tests.faces.errors import NO_TOKEN, native_error
from tests.factories import World, bearer

V = "/tenantry/v1"
REFUSED = "this link is not valid: it is unknown, expired or already used"


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
    public = settings.model_copy(update={"public_url": "https://id.acme.test/"})
    app = create_app(public, database, mailer)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def secret_of(mail: Mail) -> str:
    links: list[str] = re.findall(r"https://id\.acme\.test/\S*", mail.text)
    assert any(link.startswith("https://id.acme.test/email#tne_") for link in links), mail.text
    return next(link.partition("#")[2] for link in links if "#" in link)


async def fresh(world: World, user_id: str) -> User:
    async with world.database.transaction() as db:
        user = await db.scalar(select(User).where(User.id == user_id))
    assert user is not None
    return user


def assert_refused(r: httpx.Response) -> None:
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"] == REFUSED


async def request_change(client: httpx.AsyncClient, token: str, email: str) -> httpx.Response:
    return await client.post(f"{V}/users/me/email", json={"email": email}, headers=bearer(token))


async def test_a_change_waits_for_the_link_and_the_link_works_once(
    client: httpx.AsyncClient, world: World, mailer: FakeMailer
) -> None:
    ann = await world.user("ann@old.test", "Ann")
    token = await world.token(ann)
    r = await request_change(client, token, "Ann@New.TEST")
    assert r.status_code == 202, r.text
    assert r.json()["pendingEmail"] == "Ann@New.TEST"
    [mail] = mailer.sent
    assert mail.to == "Ann@new.test"  # the normalized address
    secret = secret_of(mail)
    assert secret not in r.text
    pending = await fresh(world, ann.id)
    assert pending.email == "ann@old.test" and pending.email_verified  # the old one stays
    assert pending.pending_email == "Ann@New.TEST"
    assert pending.pending_email_digest == digest(secret)
    me = await client.get(f"{V}/users/{ann.id}", headers=bearer(token))
    assert me.json()["email"] == "ann@old.test" and me.json()["emailVerified"] is True

    r = await client.post(f"{V}/email/confirm", json={"secret": secret})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == ann.id and r.json()["email"] == "Ann@New.TEST"
    assert r.json()["emailVerified"] is True and secret not in r.text
    done = await fresh(world, ann.id)
    assert done.email_key == "ann@new.test" and done.email_verified
    assert done.pending_email is None and done.pending_email_digest is None
    # The login name was the old address: it follows the confirmed one (users.follow_address).
    assert done.username == "Ann@New.TEST" and done.username_key == "ann@new.test"

    assert_refused(await client.post(f"{V}/email/confirm", json={"secret": secret}))
    async with world.database.transaction() as db:
        events = list(
            await db.scalars(
                select(AuditEvent).where(AuditEvent.target_id == ann.id).order_by(AuditEvent.id)
            )
        )
    actions = [e.action for e in events]
    assert actions[-2:] == ["user.email.change_requested", "user.email.change"]
    assert events[-1].details == {
        "from": "ann@old.test",
        "to": "Ann@New.TEST",
        "username": ["ann@old.test", "Ann@New.TEST"],
    }
    assert all(secret not in json.dumps(e.details) for e in events)
    assert all(digest(secret) not in json.dumps(e.details) for e in events)


async def test_a_pending_address_binds_no_invite_until_confirmed(
    client: httpx.AsyncClient, world: World, mailer: FakeMailer
) -> None:
    org = await world.org("B")
    _, owner_token = await world.member(org, "ORGANIZATION_OWNER")
    ann = await world.user("ann@old.test")
    token = await world.token(ann)
    assert (await request_change(client, token, "ann@new.test")).status_code == 202
    secret = secret_of(mailer.sent[-1])
    invite = {"inviteeEmail": "ann@new.test", "role": "ORGANIZATION_MEMBER"}
    r = await client.post(
        f"/v1/organizations/{org.id}/invites", json=invite, headers=bearer(owner_token)
    )
    assert r.status_code == 200 and r.json()["userId"] != ann.id
    assert (await client.post(f"{V}/email/confirm", json={"secret": secret})).status_code == 200
    other = await world.org("C")
    _, other_token = await world.member(other, "ORGANIZATION_OWNER")
    r = await client.post(
        f"/v1/organizations/{other.id}/invites", json=invite, headers=bearer(other_token)
    )
    assert r.status_code == 200 and r.json()["userId"] == ann.id  # verified now


async def test_expired_and_replaced_links_are_refused(
    client: httpx.AsyncClient, world: World, mailer: FakeMailer
) -> None:
    ann = await world.user("ann@old.test")
    token = await world.token(ann)
    assert (await request_change(client, token, "first@new.test")).status_code == 202
    first = secret_of(mailer.sent[-1])
    assert (await request_change(client, token, "second@new.test")).status_code == 202
    second = secret_of(mailer.sent[-1])
    assert_refused(await client.post(f"{V}/email/confirm", json={"secret": first}))
    async with world.database.transaction() as db:
        await db.execute(
            update(User)
            .where(User.id == ann.id)
            .values(pending_email_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert_refused(await client.post(f"{V}/email/confirm", json={"secret": second}))
    for made_up in ("tne_" + "A" * 43, "tni_whatever", "x" * 256):
        assert_refused(await client.post(f"{V}/email/confirm", json={"secret": made_up}))
    user = await fresh(world, ann.id)
    assert user.email == "ann@old.test" and user.email_verified


async def test_bad_requests_change_nothing_and_mail_nobody(
    client: httpx.AsyncClient, world: World, mailer: FakeMailer
) -> None:
    ann = await world.user("ann@old.test")
    token = await world.token(ann)
    for address in ("a,b@x.test", "a;b@x.test", '"x"<y@x.test>', "p\u0430ypal@x.test"):
        r = await request_change(client, token, address)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in r.json()["errors"]] == ["email"]
    r = await request_change(client, token, "ANN@old.test")
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "unchanged"
    r = await client.post(f"{V}/users/me/email", json={"email": "x@new.test"})
    assert r.status_code == 401
    native_error(r, 401, NO_TOKEN)
    r = await client.post(f"{V}/users/me/email", json={"email": "x@new.test", "extra": 1})
    assert r.status_code in (400, 401)
    user = await fresh(world, ann.id)
    assert user.pending_email is None and user.pending_email_digest is None
    assert mailer.sent == []


async def test_requests_are_rate_limited_per_user(
    client: httpx.AsyncClient, world: World, mailer: FakeMailer
) -> None:
    ann = await world.user("ann@old.test")
    token = await world.token(ann)
    for i in range(5):
        assert (await request_change(client, token, f"n{i}@new.test")).status_code == 202
    r = await request_change(client, token, "n9@new.test")
    assert r.status_code == 429, r.text
    native_error(r, 429, "too many e-mail change requests, try again later")
    assert len(mailer.sent) == 5
    assert (await fresh(world, ann.id)).pending_email == "n4@new.test"


async def test_an_administrator_sets_a_verified_address(
    client: httpx.AsyncClient, world: World
) -> None:
    admin = await world.admin()
    ann = await world.user("ann")
    headers = bearer(await world.token(admin))
    r = await client.patch(f"{V}/users/{ann.id}", json={"email": "ann@x.test"}, headers=headers)
    assert r.status_code == 200 and r.json()["emailVerified"] is True
    user = await fresh(world, ann.id)
    assert user.email_key == "ann@x.test" and user.email_verified
