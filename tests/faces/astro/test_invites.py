"""Astro invites: create (pending users, single-use secret, expiry), conflicts, validation,
permissions, tenant isolation and delete; the invite link by e-mail, only after the commit."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.app import create_app
from tenantry.clock import utcnow
from tenantry.config import Settings
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent, Invite, Membership, User
from tenantry.identity.tokens import digest
from tenantry.mail import Mail
from tests.faces.errors import NO_TOKEN, astro_error, astro_invalid
from tests.factories import World, bearer
from tests.spec import assert_astro

PREFIXES = ("/v1", "/iam/v1beta1", "/platform/v1beta1")
ALREADY_MEMBER = "this user is already a member of the organization"


async def _counts(world: World) -> tuple[int, int, int]:
    async with world.database.transaction() as db:
        invites = await db.scalar(select(func.count()).select_from(Invite)) or 0
        users = await db.scalar(select(func.count()).select_from(User)) or 0
        members = await db.scalar(select(func.count()).select_from(Membership)) or 0
    return invites, users, members


async def test_inviting_a_new_address_creates_a_pending_user(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org("Acme")
    owner, token = await world.member(org, "ORGANIZATION_OWNER", full_name="Olga Owner")
    for i, prefix in enumerate(PREFIXES):
        email = f"New.Person{i}@Example.com"
        r = await client.post(
            f"{prefix}/organizations/{org.id}/invites",
            json={"inviteeEmail": email, "role": "ORGANIZATION_OBSERVE_MEMBER"},
            headers=bearer(token),
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert_astro(body, "Invite")
        assert body["organizationId"] == org.id and body["organizationName"] == "Acme"
        assert body["inviter"] == {
            "id": owner.id,
            "subjectType": "USER",
            "username": owner.username,
            "fullName": "Olga Owner",
            "avatarUrl": "",
        }
        assert body["invitee"]["id"] == body["userId"]
        assert body["invitee"]["username"] == email
        async with world.database.transaction() as db:
            user = await db.scalar(select(User).where(User.id == body["userId"]))
            invite = await db.get(Invite, body["inviteId"])
        assert user is not None and user.status == "PENDING" and user.username == email
        assert user.email == email and not user.email_verified
        assert invite is not None and invite.invitee_email == email.lower()
        assert invite.role == "ORGANIZATION_OBSERVE_MEMBER" and invite.inviter_id == owner.id
        assert invite.accepted_at is None
        assert invite.secret_digest is not None and len(invite.secret_digest) == 64
        lifetime = invite.expires_at - utcnow()
        assert timedelta(days=6, hours=23) < lifetime <= timedelta(days=7)
        # not a member until the invite is accepted
        got = await client.get(f"/v1/organizations/{org.id}/users/{user.id}", headers=bearer(token))
        assert got.status_code == 404
        astro_error(got, 404, "user not found in this organization")
    listed = await client.get(f"/v1/organizations/{org.id}/users", headers=bearer(token))
    assert listed.json()["totalCount"] == 1
    async with world.database.transaction() as db:
        digests = set(await db.scalars(select(Invite.secret_digest)))
        events = await db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "organization.invite.create")
        )
    assert len(digests) == 3 and events == 3


async def test_an_existing_user_sees_the_invite_in_self(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    invitee = await world.user("Jane@Acme.io", "Jane")
    users_before = (await _counts(world))[1]
    r = await client.post(
        f"/iam/v1beta1/organizations/{org.id}/invites",
        json={"inviteeEmail": "jane@ACME.io", "role": "ORGANIZATION_MEMBER"},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert_astro(body, "Invite")
    assert body["userId"] == invitee.id and body["invitee"]["fullName"] == "Jane"
    assert (await _counts(world))[1] == users_before
    me = await client.get("/v1/users/self", headers=bearer(await world.token(invitee)))
    assert me.status_code == 200
    assert_astro(me.json(), "SelfUser")
    assert me.json()["invites"] == [
        {"expiresAt": body["expiresAt"], "inviteId": body["inviteId"], "organizationId": org.id}
    ]


async def test_invite_lifetime_comes_from_settings(settings: Settings, database: Database) -> None:
    world = World(database)
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    app = create_app(settings.model_copy(update={"invite_ttl_days": 2}), database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post(
            f"/v1/organizations/{org.id}/invites",
            json={"inviteeEmail": "short@acme.io", "role": "ORGANIZATION_MEMBER"},
            headers=bearer(token),
        )
    assert r.status_code == 200, r.text
    async with database.transaction() as db:
        invite = await db.get(Invite, r.json()["inviteId"])
    assert invite is not None
    assert timedelta(days=1, hours=23) < invite.expires_at - utcnow() <= timedelta(days=2)


async def test_members_and_pending_invitees_cannot_be_invited_again(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    member = await world.user("member@acme.io")
    await world.roles(org, member)
    await world.invite(org, "pending@acme.io")
    url = f"/v1/organizations/{org.id}/invites"
    before = await _counts(world)
    for email in ("MEMBER@acme.io", "pending@acme.io", "Pending@ACME.io"):
        r = await client.post(
            url, json={"inviteeEmail": email, "role": "ORGANIZATION_MEMBER"}, headers=bearer(token)
        )
        assert r.status_code == 400, r.text  # a conflict: Astro documents no 409
        assert_astro(r.json(), "Error")
        assert "member" in r.json()["message"] or "pending invite" in r.json()["message"]
        why = ALREADY_MEMBER if email.startswith("MEMBER") else "already has a pending invite"
        astro_error(r, 400, part=why)
    assert await _counts(world) == before
    # the same address may be invited to another organization
    other = await world.org("Other")
    _, other_token = await world.member(other, "ORGANIZATION_OWNER")
    r = await client.post(
        f"/v1/organizations/{other.id}/invites",
        json={"inviteeEmail": "pending@acme.io", "role": "ORGANIZATION_MEMBER"},
        headers=bearer(other_token),
    )
    assert r.status_code == 200, r.text


async def test_an_expired_invite_does_not_block_a_new_one(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    old = await world.invite(org, "late@acme.io")
    async with world.database.transaction() as db:
        found = await db.get(Invite, old.id)
        assert found is not None
        found.expires_at = utcnow() - timedelta(seconds=1)
    r = await client.post(
        f"/v1/organizations/{org.id}/invites",
        json={"inviteeEmail": "late@acme.io", "role": "ORGANIZATION_MEMBER"},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    assert r.json()["userId"] == old.user_id and r.json()["inviteId"] != old.id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"inviteeEmail": "not-an-email", "role": "ORGANIZATION_MEMBER"}, "inviteeEmail"),
        ({"inviteeEmail": "", "role": "ORGANIZATION_MEMBER"}, "inviteeEmail"),
        ({"inviteeEmail": "a b@acme.io", "role": "ORGANIZATION_MEMBER"}, "inviteeEmail"),
        ({"inviteeEmail": "x" * 320 + "@acme.io", "role": "ORGANIZATION_MEMBER"}, "inviteeEmail"),
        ({"inviteeEmail": "ok@acme.io", "role": "ORGANIZATION_KING"}, "role"),
        ({"inviteeEmail": "ok@acme.io", "role": "WORKSPACE_OWNER"}, "role"),
        ({"inviteeEmail": "ok@acme.io", "role": "SYSTEM_ADMIN"}, "role"),
        ({"inviteeEmail": "ok@acme.io"}, "role"),
        ({"role": "ORGANIZATION_MEMBER"}, "inviteeEmail"),
        ({"inviteeEmail": 42, "role": "ORGANIZATION_MEMBER"}, "inviteeEmail"),
        ({"inviteeEmail": ["ok@acme.io"], "role": "ORGANIZATION_MEMBER"}, "inviteeEmail"),
        ("{not json", None),
        ("", "body"),  # no body at all
    ],
)
async def test_bad_invites_are_400_and_change_nothing(
    client: httpx.AsyncClient, world: World, body: object, field: str | None
) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    before = await _counts(world)
    headers = bearer(token) | {"content-type": "application/json"}
    if isinstance(body, str):
        r = await client.post(f"/v1/organizations/{org.id}/invites", content=body, headers=headers)
    else:
        r = await client.post(f"/v1/organizations/{org.id}/invites", json=body, headers=headers)
    assert r.status_code == 400, r.text
    payload = r.json()
    assert_astro(payload, "Error")
    assert payload["statusCode"] == 400
    astro_invalid(r, field)
    assert await _counts(world) == before


async def test_invites_require_a_token(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    invite = await world.invite(org)
    r = await client.post(
        f"/v1/organizations/{org.id}/invites",
        json={"inviteeEmail": "x@acme.io", "role": "ORGANIZATION_MEMBER"},
    )
    assert r.status_code == 401
    assert_astro(r.json(), "Error")
    astro_error(r, 401, NO_TOKEN)
    r = await client.delete(f"/v1/organizations/{org.id}/invites/{invite.id}")
    assert r.status_code == 401
    astro_error(r, 401, NO_TOKEN)
    assert (await _counts(world))[0] == 1


async def test_members_may_not_invite_or_delete_invites(
    client: httpx.AsyncClient, world: World
) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_BILLING_ADMIN")
    invite = await world.invite(org)
    before = await _counts(world)
    r = await client.post(
        f"/v1/organizations/{org.id}/invites",
        json={"inviteeEmail": "x@acme.io", "role": "ORGANIZATION_MEMBER"},
        headers=bearer(token),
    )
    assert r.status_code == 403, r.text
    assert_astro(r.json(), "Error")
    assert "organization.invites.create" in r.json()["message"]
    r = await client.delete(
        f"/v1/organizations/{org.id}/invites/{invite.id}", headers=bearer(token)
    )
    assert r.status_code == 403
    astro_error(r, 403, "missing permission organization.invites.delete")
    assert await _counts(world) == before


async def test_other_organizations_and_their_invites_are_404(
    client: httpx.AsyncClient, world: World
) -> None:
    org_a, org_b = await world.org("A"), await world.org("B")
    _, token = await world.member(org_a, "ORGANIZATION_OWNER")
    invite_b = await world.invite(org_b)
    before = await _counts(world)
    r = await client.post(
        f"/v1/organizations/{org_b.id}/invites",
        json={"inviteeEmail": "x@acme.io", "role": "ORGANIZATION_MEMBER"},
        headers=bearer(token),
    )
    assert r.status_code == 404
    astro_error(r, 404, "organization not found")
    for org_id in (org_a.id, org_b.id):
        r = await client.delete(
            f"/v1/organizations/{org_id}/invites/{invite_b.id}", headers=bearer(token)
        )
        assert r.status_code == 404
        # org A's path: no such invite there; org B's: the caller cannot see the org
        astro_error(r, 404, "invite not found" if org_id == org_a.id else "organization not found")
    r = await client.delete(f"/v1/organizations/{org_a.id}/invites/nope", headers=bearer(token))
    assert r.status_code == 400
    astro_invalid(r, "inviteId")
    assert await _counts(world) == before


async def test_deleting_an_invite_withdraws_it(client: httpx.AsyncClient, world: World) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    invitee = await world.user("bob@acme.io")
    invite = await world.invite(org, "bob@acme.io")
    invitee_token = await world.token(invitee)
    me = await client.get("/v1/users/self", headers=bearer(invitee_token))
    assert [i["inviteId"] for i in me.json()["invites"]] == [invite.id]
    url = f"/platform/v1beta1/organizations/{org.id}/invites/{invite.id}"
    r = await client.delete(url, headers=bearer(token))
    assert r.status_code == 204 and r.content == b""
    me = await client.get("/v1/users/self", headers=bearer(invitee_token))
    assert me.json()["invites"] == []
    astro_error(await client.delete(url, headers=bearer(token)), 404, "invite not found")
    async with world.database.transaction() as db:
        event = await db.scalar(
            select(AuditEvent).where(AuditEvent.action == "organization.invite.delete")
        )
    assert event is not None and event.target_id == invite.id


def _lost_the_race(r: httpx.Response) -> bool:
    """A conflict (Astro's 400: it documents no 409): the address already invited, or the
    database's uniqueness check between two concurrent invites."""
    message = r.json()["message"]
    return r.status_code == 400 and ("pending invite" in message or "conflicting" in message)


@pytest.mark.parametrize("existing", [False, True])
async def test_concurrent_invites_for_one_address_make_one_invite(
    client: httpx.AsyncClient, world: World, existing: bool
) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    if existing:
        await world.user("race@acme.io")
    body = {"inviteeEmail": "race@acme.io", "role": "ORGANIZATION_MEMBER"}
    results = await asyncio.gather(
        *(
            client.post(f"/v1/organizations/{org.id}/invites", json=body, headers=bearer(token))
            for _ in range(4)
        )
    )
    assert sorted(r.status_code for r in results) == [200, 400, 400, 400], [r.text for r in results]
    assert all(_lost_the_race(r) for r in results if r.status_code != 200), [
        r.text for r in results
    ]
    async with world.database.transaction() as db:
        invites = await db.scalar(select(func.count()).select_from(Invite))
        people = await db.scalar(
            select(func.count()).select_from(User).where(User.username_key == "race@acme.io")
        )
    assert invites == 1 and people == 1


async def test_concurrent_invites_from_two_organizations_share_one_new_account(
    client: httpx.AsyncClient, world: World
) -> None:
    """Two organizations invite an address nobody holds, at once: one PENDING account, which
    both invites name (not a second one without a login name)."""
    orgs = [await world.org("One"), await world.org("Two")]
    tokens = [(await world.member(org, "ORGANIZATION_OWNER"))[1] for org in orgs]
    body = {"inviteeEmail": "shared@acme.io", "role": "ORGANIZATION_MEMBER"}
    results = await asyncio.gather(
        *(
            client.post(f"/v1/organizations/{org.id}/invites", json=body, headers=bearer(token))
            for org, token in zip(orgs * 2, tokens * 2, strict=True)
        )
    )
    assert sorted(r.status_code for r in results) == [200, 200, 400, 400], [r.text for r in results]
    assert all(_lost_the_race(r) for r in results if r.status_code != 200), [
        r.text for r in results
    ]
    async with world.database.transaction() as db:
        people = (await db.scalars(select(User.id).where(User.email_key == "shared@acme.io"))).all()
        invited = set(await db.scalars(select(Invite.user_id)))
    assert len(people) == 1 and invited == set(people)


# --- the invite link by e-mail -----------------------------------------------------------------


class FakeMailer:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[Mail] = []
        self.fail = fail

    async def send(self, to: str, subject: str, text: str) -> None:
        if self.fail:
            raise ConnectionRefusedError("smtp down")
        self.sent.append(Mail(to, subject, text))


class CommitFails(Database):
    """Every writing transaction rolls back at the end, as if the commit had failed."""

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        async with super().transaction(write=write) as session:
            yield session
            if write:
                raise RuntimeError("commit failed")


async def _post_invite(
    app: Any, org_id: str, token: str, email: str = "new@acme.io"
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post(
            f"/v1/organizations/{org_id}/invites",
            json={"inviteeEmail": email, "role": "ORGANIZATION_MEMBER"},
            headers=bearer(token),
        )


async def test_the_invitee_gets_the_link_by_mail(
    settings: Settings, database: Database, world: World
) -> None:
    org = await world.org("Acme")
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    mailer = FakeMailer()
    public = settings.model_copy(update={"public_url": "https://id.acme.io/"})
    r = await _post_invite(create_app(public, database, mailer), org.id, token, "Ann@Acme.io")
    assert r.status_code == 200, r.text
    [mail] = mailer.sent
    assert mail.to == "Ann@acme.io" and mail.subject == "You are invited to join Acme on Tenantry"
    links = re.findall(r"https://id\.acme\.io/\S*", mail.text)
    secret = next(link.partition("#")[2] for link in links if "#" in link)
    assert f"https://id.acme.io/invite#{secret}" in links  # in the fragment, nowhere else
    assert mail.text.count(secret) == 1
    async with database.transaction() as db:
        invite = await db.get(Invite, r.json()["inviteId"])
    assert invite is not None and invite.secret_digest == digest(secret)
    assert secret not in r.text


async def test_no_mail_when_the_invite_is_refused_or_rolled_back(
    settings: Settings, database: Database, world: World
) -> None:
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    member = await world.user("member@acme.io")
    await world.roles(org, member)
    mailer = FakeMailer()
    app = create_app(settings, database, mailer)
    conflict = await _post_invite(app, org.id, token, "member@acme.io")
    assert conflict.status_code == 400 and mailer.sent == []
    astro_error(conflict, 400, ALREADY_MEMBER)
    failing = CommitFails(settings)
    try:
        r = await _post_invite(create_app(settings, failing, mailer), org.id, token)
    finally:
        await failing.dispose()
    assert r.status_code == 500, r.text
    assert mailer.sent == []
    assert (await _counts(world))[0] == 0  # the invite was rolled back
    # the same request on a database that commits does send the mail
    ok = await _post_invite(create_app(settings, database, mailer), org.id, token)
    assert ok.status_code == 200 and [m.to for m in mailer.sent] == ["new@acme.io"]


async def test_a_mail_failure_does_not_fail_the_invite(
    settings: Settings, database: Database, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    org = await world.org()
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    r = await _post_invite(create_app(settings, database, FakeMailer(fail=True)), org.id, token)
    assert r.status_code == 200, r.text
    assert (await _counts(world))[0] == 1
    warnings = [rec.getMessage() for rec in caplog.records if rec.name == "tenantry.mail"]
    assert warnings == ["sending mail failed: ConnectionRefusedError"]
    assert not any("tni_" in rec.getMessage() for rec in caplog.records)
