"""Accepting invites: link by e-mail -> POST /tenantry/v1/invites/accept; new accounts choose a
password and are signed in, existing accounts must be signed in as themselves; single use
(also under concurrency), uniform refusals that change nothing, rate limits, audit."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.app import create_app
from tenantry.clock import utcnow
from tenantry.config import Settings
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent, Invite, Membership, Organization, User
from tenantry.directory import accounts, invites
from tenantry.identity.passwords import Hasher
from tenantry.identity.principals import system_principal
from tenantry.identity.tokens import digest
from tenantry.mail import Mail
from tests.faces.errors import BAD_TOKEN, native_error
from tests.factories import World, bearer

V = "/tenantry/v1"
ACCEPT = f"{V}/invites/accept"
PASSWORD = "violet-staircase-42"
REFUSED = "this invite is not valid: it is unknown, expired, already accepted or withdrawn"
SIGN_IN_FIRST = "sign in as the invited user to accept this invite"
THROTTLED = "too many invite attempts, try again later"


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[Mail] = []

    async def send(self, to: str, subject: str, text: str) -> None:
        self.sent.append(Mail(to, subject, text))


@pytest.fixture
def mailer() -> FakeMailer:
    return FakeMailer()


async def _client(
    settings: Settings, database: Database, mailer: FakeMailer
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database, mailer)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


@pytest.fixture
async def client(
    settings: Settings, database: Database, mailer: FakeMailer
) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(settings, database, mailer):
        yield c


async def invite(
    world: World, org: Organization, email: str, role: str = "ORGANIZATION_MEMBER"
) -> tuple[Invite, str]:
    """An invite and its link secret, made through the service."""
    async with world.database.transaction() as db:
        created = await invites.create_invite(db, system_principal(), org.id, email, role)
    return created.view.invite, created.secret


async def with_password(world: World, username: str) -> User:
    user = await world.user(username)
    async with world.database.transaction() as db:
        await accounts.set_password(db, Hasher(2, 19456, 1), system_principal(), user.id, PASSWORD)
    return user


async def state(world: World, invite_id: str, user_id: str) -> tuple[Any, ...]:
    """What an acceptance changes: the invite, the user, memberships, session tokens."""
    async with world.database.transaction() as db:
        inv = await db.get(Invite, invite_id)
        user = await db.scalar(select(User).where(User.id == user_id))
        members = await db.scalar(
            select(func.count()).select_from(Membership).where(Membership.user_id == user_id)
        )
        accepts = await db.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "invite.accept")
        )
    assert inv is not None and user is not None
    return (inv.accepted_at, user.status, user.password_hash, user.full_name, members, accepts)


def _refused(r: httpx.Response) -> None:
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == REFUSED


async def test_invite_mail_accept_sign_in(
    client: httpx.AsyncClient,
    world: World,
    mailer: FakeMailer,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    org = await world.org("Acme")
    _, owner_token = await world.member(org, "ORGANIZATION_OWNER", full_name="Olga Owner")
    r = await client.post(
        f"/v1/organizations/{org.id}/invites",
        json={"inviteeEmail": "New.Person@Example.com", "role": "ORGANIZATION_OBSERVE_MEMBER"},
        headers=bearer(owner_token),
    )
    assert r.status_code == 200, r.text
    invite_id, user_id = r.json()["inviteId"], r.json()["userId"]
    # the mail: to the address as written, the secret only in the link's fragment
    [mail] = mailer.sent
    assert mail.to == "New.Person@example.com" and "Acme" in mail.subject  # normalized
    assert "Olga Owner" in mail.text and "ORGANIZATION_OBSERVE_MEMBER" in mail.text
    found = re.findall(r"\S*tni_[A-Za-z0-9_-]+", mail.text)
    assert len(found) == 1
    link = found[0]
    base, _, secret = link.partition("#")
    assert base == f"{settings.public_url}/invite" and secret.startswith("tni_")
    assert "?" not in link and secret not in r.text
    async with world.database.transaction() as db:
        stored = await db.get(Invite, invite_id)
        assert stored is not None and stored.secret_digest == digest(secret)

    r = await client.post(
        ACCEPT, json={"secret": secret, "password": PASSWORD, "fullName": " New Person "}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["organizationId"] == org.id and body["userId"] == user_id
    assert body["role"] == "ORGANIZATION_OBSERVE_MEMBER" and body["alreadyMember"] is False
    session = body["session"]
    assert session["token"].startswith("tnt_") and session["userId"] == user_id
    assert session["tokenType"] == "Bearer" and session["expiresAt"] <= session["maxExpiresAt"]

    me = await client.get("/v1/users/self", headers=bearer(session["token"]))
    assert me.status_code == 200, me.text
    assert me.json()["invites"] == [] and me.json()["fullName"] == "New Person"
    org_scope = {"type": "ORGANIZATION", "entityId": org.id}
    assert {"role": "ORGANIZATION_OBSERVE_MEMBER", "scope": org_scope} in me.json()["roles"]
    login = await client.post(
        f"{V}/auth/login", json={"username": "new.person@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200 and login.json()["userId"] == user_id
    member = await client.get(
        f"/v1/organizations/{org.id}/users/{user_id}", headers=bearer(owner_token)
    )
    assert member.status_code == 200 and member.json()["organizationRole"] == (
        "ORGANIZATION_OBSERVE_MEMBER"
    )
    async with world.database.transaction() as db:
        user = await db.scalar(select(User).where(User.id == user_id))
        stored = await db.get(Invite, invite_id)
        organization = await db.get(Organization, org.id)
        event = await db.scalar(select(AuditEvent).where(AuditEvent.action == "invite.accept"))
    assert user is not None and user.status == "ACTIVE" and user.first_login_at is not None
    assert user.primary_organization_id == org.id
    assert stored is not None and stored.accepted_at is not None
    assert organization is not None and organization.member_count == 2
    assert event is not None and event.actor_id == user_id and event.target_id == invite_id
    assert event.organization_id == org.id and event.details["newAccount"] is True
    assert secret not in str(event.details)

    # single use
    again = await client.post(ACCEPT, json={"secret": secret, "password": PASSWORD})
    _refused(again)
    assert all(secret not in rec.getMessage() for rec in caplog.records)


@pytest.mark.parametrize("case", ["wrong", "unprefixed", "expired", "withdrawn", "accepted"])
async def test_invalid_invites_get_one_refusal_and_change_nothing(
    client: httpx.AsyncClient, world: World, case: str
) -> None:
    org = await world.org()
    inv, secret = await invite(world, org, "someone@acme.io")
    if case == "wrong":
        secret = invites.LINK_PREFIX + secrets.token_urlsafe(32)
    elif case == "unprefixed":
        secret = secret.removeprefix(invites.LINK_PREFIX)
    elif case in ("expired", "accepted"):
        async with world.database.transaction() as db:
            found = await db.get(Invite, inv.id)
            assert found is not None
            if case == "expired":
                found.expires_at = utcnow() - timedelta(seconds=1)
            else:
                found.accepted_at = utcnow() - timedelta(hours=1)
    else:
        async with world.database.transaction() as db:
            await invites.delete_invite(db, system_principal(), org.id, inv.id)
    before = await state(world, inv.id, inv.user_id or "") if case != "withdrawn" else None
    r = await client.post(ACCEPT, json={"secret": secret, "password": PASSWORD})
    _refused(r)
    if before is not None:
        assert await state(world, inv.id, inv.user_id or "") == before
        assert before[1] == "PENDING" and before[4] == 0


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"password": "qwertyuiop"}, "too_common"),
        ({"password": "k7#Qz"}, "too_short"),
        ({"password": "weak@acme.io"}, "matches_username"),
        ({}, "required"),
        ({"password": PASSWORD, "fullName": "bad\x07name"}, "invalid"),
    ],
)
async def test_bad_new_account_details_are_400_and_change_nothing(
    client: httpx.AsyncClient, world: World, extra: dict[str, str], code: str
) -> None:
    org = await world.org()
    inv, secret = await invite(world, org, "weak@acme.io")
    before = await state(world, inv.id, inv.user_id or "")
    r = await client.post(ACCEPT, json={"secret": secret, **extra})
    assert r.status_code == 400, r.text
    assert code in {e["code"] for e in r.json()["errors"]}
    assert "password" not in extra or extra["password"] not in r.text
    assert await state(world, inv.id, inv.user_id or "") == before
    # the invite still works
    ok = await client.post(ACCEPT, json={"secret": secret, "password": PASSWORD})
    assert ok.status_code == 200, ok.text


async def test_an_existing_account_must_be_signed_in_as_itself(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    jane = await with_password(world, "jane@acme.io")
    other = await world.user("mallory@acme.io")
    inv, secret = await invite(world, org, "JANE@acme.io", "ORGANIZATION_BILLING_ADMIN")
    assert inv.user_id == jane.id
    before = await state(world, inv.id, jane.id)
    anonymous = await client.post(ACCEPT, json={"secret": secret})
    assert anonymous.status_code == 401, anonymous.text
    native_error(anonymous, 401, SIGN_IN_FIRST)
    as_other = await client.post(
        ACCEPT, json={"secret": secret}, headers=bearer(await world.token(other))
    )
    assert as_other.status_code == 403, as_other.text
    native_error(as_other, 403, "this invite is for another user")
    bad_token = await client.post(ACCEPT, json={"secret": secret}, headers=bearer("tnt_nope"))
    assert bad_token.status_code == 401
    native_error(bad_token, 401, BAD_TOKEN)
    # a password is for new accounts only: it cannot be reset through an invite
    own = bearer(await world.token(jane))
    reset = await client.post(ACCEPT, json={"secret": secret, "password": "new-" + PASSWORD})
    assert reset.status_code == 401
    native_error(reset, 401, SIGN_IN_FIRST)
    reset = await client.post(
        ACCEPT, json={"secret": secret, "password": "new-" + PASSWORD}, headers=own
    )
    assert reset.status_code == 400 and reset.json()["errors"][0]["field"] == "password"
    assert await state(world, inv.id, jane.id) == before

    r = await client.post(ACCEPT, json={"secret": secret}, headers=own)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "organizationId": org.id,
        "userId": jane.id,
        "role": "ORGANIZATION_BILLING_ADMIN",
        "alreadyMember": False,
        "session": None,
    }
    after = await state(world, inv.id, jane.id)
    assert after[0] is not None and after[1:3] == before[1:3] and after[4] == 1
    me = await client.get("/v1/users/self", headers=own)
    assert me.json()["invites"] == []
    _refused(await client.post(ACCEPT, json={"secret": secret}, headers=own))


async def test_a_new_account_invite_refuses_someone_else_signed_in(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    inv, secret = await invite(world, org, "fresh@acme.io")
    someone = await world.user("someone@acme.io")
    before = await state(world, inv.id, inv.user_id or "")
    r = await client.post(
        ACCEPT,
        json={"secret": secret, "password": PASSWORD},
        headers=bearer(await world.token(someone)),
    )
    assert r.status_code == 403, r.text
    native_error(r, 403, part="the request is signed in as another one")
    assert await state(world, inv.id, inv.user_id or "") == before


async def test_already_a_member_keeps_the_role(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    jane = await with_password(world, "jane@acme.io")
    inv, secret = await invite(world, org, "jane@acme.io", "ORGANIZATION_MEMBER")
    await world.roles(org, jane, "ORGANIZATION_OWNER")  # added directly meanwhile
    r = await client.post(ACCEPT, json={"secret": secret}, headers=bearer(await world.token(jane)))
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "ORGANIZATION_OWNER" and r.json()["alreadyMember"] is True
    accepted_at, *_, members, accepts = await state(world, inv.id, jane.id)
    assert accepted_at is not None and members == 1 and accepts == 1


async def test_parallel_acceptances_one_wins(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    inv, secret = await invite(world, org, "race@acme.io")
    results = await asyncio.gather(
        *(
            client.post(ACCEPT, json={"secret": secret, "password": f"{PASSWORD}-{i}"})
            for i in range(4)
        )
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 404, 404, 404], [r.text for r in results]
    winner = next(r for r in results if r.status_code == 200)
    *_, members, accepts = await state(world, inv.id, inv.user_id or "")
    assert members == 1 and accepts == 1
    sessions = [r.json()["session"] for r in results if r.status_code == 200]
    me = await client.get("/v1/users/self", headers=bearer(sessions[0]["token"]))
    assert me.status_code == 200 and winner.json()["userId"] == me.json()["id"]


async def test_two_invites_of_one_new_account_in_parallel(
    client: httpx.AsyncClient, world: World
) -> None:
    """Only one may choose the password; the other finds an existing account (401)."""
    org_a, org_b = await world.org("A"), await world.org("B")
    inv_a, secret_a = await invite(world, org_a, "twice@acme.io")
    inv_b, secret_b = await invite(world, org_b, "twice@acme.io")
    assert inv_a.user_id == inv_b.user_id
    results = await asyncio.gather(
        client.post(ACCEPT, json={"secret": secret_a, "password": PASSWORD + "-a"}),
        client.post(ACCEPT, json={"secret": secret_b, "password": PASSWORD + "-b"}),
    )
    assert sorted(r.status_code for r in results) == [200, 401], [r.text for r in results]
    winner = next(r for r in results if r.status_code == 200)
    loser_invite = inv_b if winner.json()["organizationId"] == org_a.id else inv_a
    accepted_at, status, *_ = await state(world, loser_invite.id, inv_a.user_id or "")
    assert accepted_at is None and status == "ACTIVE"
    # the account's owner accepts the other one signed in
    token = winner.json()["session"]["token"]
    other_secret = secret_b if loser_invite is inv_b else secret_a
    r = await client.post(ACCEPT, json={"secret": other_secret}, headers=bearer(token))
    assert r.status_code == 200 and r.json()["session"] is None


async def test_acceptance_is_rate_limited_per_address(
    settings: Settings, database: Database, mailer: FakeMailer, world: World
) -> None:
    org = await world.org()
    inv, secret = await invite(world, org, "slow@acme.io")
    limited = settings.model_copy(update={"invite_accept_rate_per_ip": 3})
    async for c in _client(limited, database, mailer):
        for _ in range(3):
            guess = invites.LINK_PREFIX + secrets.token_urlsafe(32)
            _refused(await c.post(ACCEPT, json={"secret": guess}))
        r = await c.post(ACCEPT, json={"secret": secret, "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["status"] == 429
        native_error(r, 429, THROTTLED)
        again = await c.post(ACCEPT, json={"secret": secret, "password": PASSWORD})
        assert again.status_code == 429
        native_error(again, 429, THROTTLED)
    accepted_at, status, *_ = await state(world, inv.id, inv.user_id or "")
    assert accepted_at is None and status == "PENDING"
    async with world.database.transaction() as db:  # only the first refusal is audited
        throttled = list(
            await db.scalars(
                select(AuditEvent).where(AuditEvent.action == "invite.accept.throttled")
            )
        )
    assert [e.details["budget"] for e in throttled] == ["address"]
    assert throttled[0].ip is not None and secret not in str(throttled[0].details)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "secret"),
        ({"secret": ""}, "secret"),
        ({"secret": "x" * 257}, "secret"),
        ({"secret": 42}, "secret"),
        ({"secret": "tni_x", "extra": 1}, "extra"),
        ({"secret": "tni_x", "password": "x" * 1025}, "password"),
    ],
)
async def test_malformed_bodies_are_400(
    client: httpx.AsyncClient, body: object, field: str
) -> None:
    r = await client.post(ACCEPT, json=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    native_error(r, 400, fields=[field])
