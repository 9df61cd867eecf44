"""Adoption: a SCIM create naming an existing account links it instead of refusing, exactly when
the account's verified address is in a domain the token's organization has verified (through a
real DNS server, tests/dns.py) and the account is a member of that organization. Every other
clash stays the 409 `uniqueness` that says nothing (GHSA-9m7q-6qg6-888h: a token never
matches, links or changes an account its organization does not own)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from tenantry.config import Nameserver
from tenantry.db.models import AuditEvent, Membership, Organization, Token, User
from tenantry.directory import domains
from tenantry.dns import TxtResolver
from tenantry.identity.principals import system_principal
from tests.dns import LocalDns, Zone
from tests.faces.scim.conftest import Idp, assert_scim_error, assert_user, new_user
from tests.factories import World, bearer

pytestmark = pytest.mark.usefixtures("dns_zone")


@pytest.fixture
def verify(world: World, local_dns: LocalDns, dns_zone: Zone) -> Any:
    """Claim `domain` for `org`, publish its TXT record on the test DNS server, and (unless
    `publish` is False) verify it through the real resolver."""

    async def run(org: Organization, domain: str = "example.com", publish: bool = True) -> None:
        async with world.database.transaction() as db:
            claim = await domains.claim_domain(db, system_principal(), org.id, domain)
        if not publish:
            return
        dns_zone.txt(domains.record_name(claim), domains.record_value(claim))
        lookup = TxtResolver((Nameserver("127.0.0.1", local_dns.port),), 2.0).txt
        async with world.database.transaction() as db:
            await domains.verify_domain(db, system_principal(), org.id, domain, lookup)

    return run


async def row(world: World, user_id: str) -> User:
    async with world.database.transaction(write=False) as db:
        found = await db.scalar(select(User).where(User.id == user_id))
    assert found is not None
    return found


async def adoptions(world: World) -> list[tuple[str | None, str | None, dict[str, Any]]]:
    async with world.database.transaction(write=False) as db:
        rows = await db.scalars(
            select(AuditEvent).where(AuditEvent.action == "organization.user.adopt")
        )
        return [(e.actor_id, e.target_id, e.details) for e in rows]


async def token_id(world: World, secret: str) -> str:
    from tenantry.identity.tokens import digest

    async with world.database.transaction(write=False) as db:
        found = await db.scalar(select(Token.id).where(Token.digest == digest(secret)))
    assert found is not None
    return found


def untouched(user: User) -> tuple[Any, ...]:
    return (user.managed_by_organization_id, user.realm, user.idp_managed, user.external_id)


NATIVE_ACCOUNT = (None, "native", False, None)


async def test_a_member_with_a_verified_address_in_a_verified_domain_is_adopted(
    client: httpx.AsyncClient, world: World, idp: Idp, verify: Any
) -> None:
    await verify(idp.org)
    alice, alice_token = await world.member(idp.org, username="alice@example.com")
    body = new_user(
        "Alice@Example.com",
        externalId="okta-0001",
        displayName="Alice Liddell",
        emails=[{"value": "alice@example.com", "primary": True}],
    )
    r = await idp.post("/Users", body)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["id"] == alice.id and made["externalId"] == "okta-0001"
    assert made["displayName"] == "Alice Liddell"
    assert_user(made)
    after = await row(world, alice.id)
    assert untouched(after) == (idp.org.id, "scim", True, "okta-0001")
    assert after.email_verified and after.seq == alice.seq
    assert await adoptions(world) == [
        (await token_id(world, idp.token), alice.id, {"matched": "userName"})
    ]
    async with world.database.transaction(write=False) as db:
        role = await db.scalar(select(Membership.role).where(Membership.user_id == alice.id))
    assert role == "ORGANIZATION_MEMBER"  # adoption links; it changes no one's role
    found = await idp.get("/Users", params={"filter": 'userName eq "alice@example.com"'})
    assert [u["id"] for u in found.json()["Resources"]] == [alice.id]
    # an adopted account is managed like a provisioned one, in every face
    me = await client.get("/v1/users/self", headers=bearer(alice_token))
    assert me.status_code == 200 and me.json()["isIdpManaged"] is True, me.text
    admin = await world.token(await world.admin())
    ece = await client.get(f"/api/v1/users/{after.username}", headers=bearer(admin))
    assert ece.json()["security"]["security_realm"]["type"] != "native", ece.text
    refused = await client.patch(
        f"/api/v1/users/{after.username}", json={"full_name": "Mallory"}, headers=bearer(admin)
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["errors"][0]["code"] == "user.cannot_modify_external"
    again = await idp.post("/Users", body)  # adopted once: now it is the IdP's own account
    assert_scim_error(again, 409, "uniqueness")


async def test_an_account_matched_by_its_verified_address_is_adopted_and_renamed(
    world: World, idp: Idp, verify: Any
) -> None:
    await verify(idp.org)
    alice, _ = await world.member(idp.org, username="alice", email="alice@example.com")
    body = new_user("a.liddell@example.com", emails=[{"value": "ALICE@example.com"}])
    r = await idp.post("/Users", body)
    assert r.status_code == 201 and r.json()["id"] == alice.id, r.text
    after = await row(world, alice.id)
    assert after.username == "a.liddell@example.com"
    assert after.managed_by_organization_id == idp.org.id
    assert [d for _, _, d in await adoptions(world)] == [{"matched": "email"}]


async def test_an_inactive_adoption_ends_the_accounts_credentials(
    client: httpx.AsyncClient, world: World, idp: Idp, verify: Any
) -> None:
    await verify(idp.org)
    alice, token = await world.member(idp.org, username="alice@example.com")
    assert (await client.get("/v1/users/self", headers=bearer(token))).status_code == 200
    r = await idp.post("/Users", new_user("alice@example.com", active=False))
    assert r.status_code == 201 and r.json()["active"] is False, r.text
    assert (await client.get("/v1/users/self", headers=bearer(token))).status_code == 401
    assert not (await row(world, alice.id)).enabled


async def test_a_token_never_adopts_an_account_of_another_organization(
    world: World, idp: Idp, other_idp: Idp, verify: Any
) -> None:
    """Acme verified example.com; Globex only claimed it. Bob is a member of Globex only, and
    Carol of Acme only: neither organization's token may link the other's account, and
    Globex's pending claim adopts nobody, not even its own member."""
    await verify(idp.org)
    await verify(other_idp.org, publish=False)
    bob, _ = await world.member(other_idp.org, username="bob@example.com")
    carol, _ = await world.member(idp.org, username="carol@example.com")
    answers = [
        await idp.post("/Users", new_user("bob@example.com")),  # verified, not a member
        await other_idp.post("/Users", new_user("bob@example.com")),  # member, not verified
        await other_idp.post("/Users", new_user("carol@example.com")),  # neither
        await other_idp.post(
            "/Users", new_user("carol2@example.com", emails=[{"value": "carol@example.com"}])
        ),
    ]
    for r in answers[:3]:
        assert_scim_error(r, 409, "uniqueness")
        assert r.json()["detail"] == "this userName is not available"
    # by address only, a foreign account is not matched at all: a new account of Globex's
    assert answers[3].status_code == 201 and answers[3].json()["id"] != carol.id
    for user in (bob, carol):
        assert untouched(await row(world, user.id)) == NATIVE_ACCOUNT
    assert await adoptions(world) == []
    shown = await other_idp.get("/Users", params={"filter": 'userName eq "bob@example.com"'})
    assert shown.json()["totalResults"] == 0


REFUSALS = [
    "address not verified",
    "not a member",
    "address outside the domain",
    "address in a subdomain",
    "managed by another organization",
    "holds a system role",
    "domain only claimed",
]


@pytest.mark.parametrize("case", REFUSALS)
async def test_anything_short_of_ownership_stays_a_uniqueness_conflict(
    world: World, idp: Idp, other_idp: Idp, verify: Any, case: str
) -> None:
    await verify(idp.org, publish=case != "domain only claimed")
    name = {
        "address outside the domain": "dora@example.org",
        "address in a subdomain": "dora@eu.example.com",
    }.get(case, "dora@example.com")
    if case == "managed by another organization":
        made = await other_idp.create_user(name)
        dora = await row(world, made["id"])
    else:
        dora = await world.user(name)
    if case != "not a member":
        await world.roles(idp.org, dora, "ORGANIZATION_MEMBER")
    if case == "holds a system role":
        await world.system_role(dora, "SYSTEM_VIEWER")
    if case == "address not verified":
        async with world.database.transaction() as db:
            await db.execute(update(User).where(User.id == dora.id).values(email_verified=False))
    before = untouched(await row(world, dora.id))
    r = await idp.post("/Users", new_user(name, externalId="okta-9", displayName="Dora"))
    assert_scim_error(r, 409, "uniqueness")
    assert r.json()["detail"] == "this userName is not available"
    after = await row(world, dora.id)
    assert untouched(after) == before and after.full_name != "Dora"
    assert await adoptions(world) == []
