"""Verified e-mail domains (directory/domains.py) through the native face and the CLI, against a
real DNS server (tests/dns.py): claim, the TXT challenge, verification and its refusals (no
record, wrong value, no answer), one verifying organization per domain, audit, permissions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from tenantry.app import create_app
from tenantry.authz.engine import load_user_grants
from tenantry.cli import app as cli_app
from tenantry.config import load_settings
from tenantry.db.engine import Database
from tenantry.db.models import AuditEvent, Organization, OrganizationDomain
from tenantry.directory import domains, organizations
from tenantry.directory.organizations import OrganizationFields
from tenantry.errors import ElevationRequired
from tenantry.identity.policy import SecurityPolicy
from tenantry.identity.principals import Principal, system_principal
from tests.dns import LocalDns, Zone
from tests.faces.errors import native_error
from tests.factories import World, bearer

NATIVE = "/tenantry/v1"
PREFIX = "tenantry-domain-verification="


def path(org: Organization, *rest: str) -> str:
    return "/".join([f"{NATIVE}/organizations/{org.id}/domains", *rest])


async def owned_org(world: World, name: str = "Acme") -> tuple[Organization, str]:
    org = await world.org(name)
    _, token = await world.member(org, "ORGANIZATION_OWNER")
    return org, token


async def claim(client: httpx.AsyncClient, org: Organization, token: str, domain: str) -> Any:
    r = await client.post(path(org), json={"domain": domain}, headers=bearer(token))
    assert r.status_code == 201, r.text
    return r.json()


def publish(zone: Zone, claimed: dict[str, Any], *extra: str) -> None:
    zone.txt(claimed["txtRecord"]["name"], *extra, claimed["txtRecord"]["value"])


async def claims(world: World) -> list[tuple[str, str, bool]]:
    async with world.database.transaction(write=False) as db:
        rows = await db.scalars(select(OrganizationDomain).order_by(OrganizationDomain.domain))
        return [(d.organization_id, d.domain, d.verified_at is not None) for d in rows]


async def actions(world: World, target_id: str) -> list[str]:
    async with world.database.transaction(write=False) as db:
        rows = await db.scalars(
            select(AuditEvent).where(AuditEvent.target_id == target_id).order_by(AuditEvent.id)
        )
        return [e.action for e in rows]


async def test_an_owner_claims_publishes_and_verifies_a_domain(
    client: httpx.AsyncClient, world: World, dns_zone: Zone
) -> None:
    org, token = await owned_org(world)
    made = await claim(client, org, token, " Example.COM. ")
    assert made["domain"] == "example.com" and made["status"] == "pending"
    assert made["organizationId"] == org.id and made["verifiedAt"] is None
    assert made["txtRecord"]["name"] == "_tenantry-challenge.example.com"
    value = made["txtRecord"]["value"]
    assert value.startswith(PREFIX) and len(value) >= len(PREFIX) + 32
    publish(dns_zone, made, "v=spf1 -all")
    r = await client.post(path(org, "example.com", "verify"), headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "verified" and r.json()["verifiedAt"] is not None
    listed = await client.get(path(org), headers=bearer(token))
    assert [(d["domain"], d["status"]) for d in listed.json()["domains"]] == [
        ("example.com", "verified")
    ]
    one = await client.get(path(org, "EXAMPLE.com"), headers=bearer(token))
    assert one.status_code == 200 and one.json()["id"] == made["id"]
    assert await actions(world, made["id"]) == [
        "organization.domain.create",
        "organization.domain.verify",
    ]
    again = await client.post(path(org, "example.com", "verify"), headers=bearer(token))
    assert again.status_code == 200 and again.json()["verifiedAt"] == r.json()["verifiedAt"]
    async with world.database.transaction(write=False) as db:
        assert await domains.in_verified_domain(db, org.id, "Jane@Example.com")
        assert not await domains.in_verified_domain(db, org.id, "jane@sub.example.com")
        assert not await domains.in_verified_domain(db, org.id, "jane@example.org")
        assert not await domains.in_verified_domain(db, org.id, None)


async def test_an_international_domain_is_kept_and_challenged_in_idna(
    client: httpx.AsyncClient, world: World, dns_zone: Zone
) -> None:
    org, token = await owned_org(world)
    made = await claim(client, org, token, "Bücher.Example")
    assert made["domain"] == "xn--bcher-kva.example"
    assert made["txtRecord"]["name"] == "_tenantry-challenge.xn--bcher-kva.example"
    publish(dns_zone, made)
    r = await client.post(path(org, "bücher.example", "verify"), headers=bearer(token))
    assert r.status_code == 200 and r.json()["status"] == "verified", r.text
    async with world.database.transaction(write=False) as db:
        assert await domains.in_verified_domain(db, org.id, "anna@BÜCHER.example")


@pytest.mark.parametrize(
    "domain",
    [
        "com",  # no dot: a top-level domain is nobody's
        "a..example.com",
        "exa mple.com",
        "jane@example.com",
        "1.2.3.4",
        "[127.0.0.1]",
        "\u0430pple.com",  # Cyrillic a: looks like apple.com
        "x" * 64 + ".com",  # a label longer than 63
        "ex\u200bample.com",  # zero-width space
    ],
)
async def test_a_bad_domain_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, world: World, domain: str
) -> None:
    org, token = await owned_org(world)
    r = await client.post(path(org), json={"domain": domain}, headers=bearer(token))
    native_error(r, 400, fields=["domain"], code="invalid")
    assert await claims(world) == []


@pytest.mark.parametrize("body", [{}, {"domain": 7}, {"domain": ""}, {"domain": "x.io", "y": 1}])
async def test_a_malformed_body_is_refused(
    client: httpx.AsyncClient, world: World, body: dict[str, Any]
) -> None:
    org, token = await owned_org(world)
    r = await client.post(path(org), json=body, headers=bearer(token))
    native_error(r, 400)
    assert await claims(world) == []


async def test_no_record_and_a_wrong_value_say_what_the_dns_answered(
    client: httpx.AsyncClient, world: World, dns_zone: Zone
) -> None:
    org, token = await owned_org(world)
    made = await claim(client, org, token, "example.com")
    verify = path(org, "example.com", "verify")
    missing = await client.post(verify, headers=bearer(token))
    body = native_error(missing, 400, fields=["domain"], code="no_record")
    assert "_tenantry-challenge.example.com" in body["detail"]
    assert made["txtRecord"]["value"] in body["detail"]
    dns_zone.txt("_tenantry-challenge.example.com", f"{PREFIX}guessed", "v=spf1 -all")
    wrong = await client.post(verify, headers=bearer(token))
    body = native_error(wrong, 400, fields=["domain"], code="wrong_value")
    assert f"{PREFIX}guessed" in body["detail"] and "v=spf1 -all" in body["detail"]
    dns_zone.txt("_tenantry-challenge.example.com")  # the name exists, without TXT records
    native_error(await client.post(verify, headers=bearer(token)), 400, code="no_record")
    assert await claims(world) == [(org.id, "example.com", False)]
    assert await actions(world, made["id"]) == ["organization.domain.create"]


async def test_a_dns_that_does_not_answer_is_a_503_and_changes_nothing(
    database: Database, world: World, local_dns: LocalDns, dns_zone: Zone
) -> None:
    settings = load_settings(
        database_url=database.settings.database_url,
        environment="test",
        dns_nameservers=f"127.0.0.1:{local_dns.silent_port}",
        dns_timeout_seconds=0.3,
    )
    transport = httpx.ASGITransport(app=create_app(settings, database))
    async with httpx.AsyncClient(transport=transport, base_url="http://tenantry.test") as client:
        org, token = await owned_org(world)
        made = await claim(client, org, token, "example.com")
        publish(dns_zone, made)  # on the real server, which this app does not ask
        r = await client.post(path(org, "example.com", "verify"), headers=bearer(token))
    body = native_error(r, 503)
    assert (
        "did not answer within 0.3 s" in body["detail"] and body["title"] == "Service Unavailable"
    )
    assert await claims(world) == [(org.id, "example.com", False)]


async def test_a_domain_verified_by_one_organization_is_not_verified_by_another(
    client: httpx.AsyncClient, world: World, dns_zone: Zone
) -> None:
    acme, acme_token = await owned_org(world, "Acme")
    globex, globex_token = await owned_org(world, "Globex")
    first = await claim(client, acme, acme_token, "example.com")
    second = await claim(client, globex, globex_token, "example.com")  # pending claims: any
    assert first["txtRecord"]["value"] != second["txtRecord"]["value"]
    publish(dns_zone, first, second["txtRecord"]["value"])
    ok = await client.post(path(acme, "example.com", "verify"), headers=bearer(acme_token))
    assert ok.status_code == 200, ok.text
    taken = await client.post(path(globex, "example.com", "verify"), headers=bearer(globex_token))
    native_error(taken, 409, fields=["domain"], code="taken")
    assert sorted(await claims(world)) == sorted(
        [(acme.id, "example.com", True), (globex.id, "example.com", False)]
    )
    gone = await client.delete(path(acme, "example.com"), headers=bearer(acme_token))
    assert gone.status_code == 204
    assert await actions(world, first["id"]) == [
        "organization.domain.create",
        "organization.domain.verify",
        "organization.domain.delete",
    ]
    freed = await client.post(path(globex, "example.com", "verify"), headers=bearer(globex_token))
    assert freed.status_code == 200 and freed.json()["status"] == "verified", freed.text


async def test_a_domain_is_claimed_once_per_organization(
    client: httpx.AsyncClient, world: World
) -> None:
    org, token = await owned_org(world)
    await claim(client, org, token, "example.com")
    again = await client.post(path(org), json={"domain": "EXAMPLE.com."}, headers=bearer(token))
    native_error(again, 409, fields=["domain"], code="exists")
    assert await claims(world) == [(org.id, "example.com", False)]


async def test_only_the_organizations_owners_manage_its_domains(
    client: httpx.AsyncClient, world: World
) -> None:
    org, owner_token = await owned_org(world)
    _, member_token = await world.member(org, "ORGANIZATION_MEMBER")
    _, foreign_token = await owned_org(world, "Globex")
    await claim(client, org, owner_token, "example.com")
    for method, url, body in [
        ("POST", path(org), {"domain": "example.org"}),
        ("GET", path(org), None),
        ("POST", path(org, "example.com", "verify"), None),
        ("DELETE", path(org, "example.com"), None),
    ]:
        refused = await client.request(method, url, json=body, headers=bearer(member_token))
        native_error(refused, 403, part="organization.domains.")
        hidden = await client.request(method, url, json=body, headers=bearer(foreign_token))
        native_error(hidden, 404)
    assert await claims(world) == [(org.id, "example.com", False)]
    unknown = await client.get(path(org, "example.net"), headers=bearer(owner_token))
    native_error(unknown, 404, "domain not found")
    bad = await client.delete(path(org, "not a domain"), headers=bearer(owner_token))
    native_error(bad, 400, fields=["domain"])


async def test_claiming_and_verifying_need_elevation_when_the_instance_requires_it(
    world: World, dns_zone: Zone, local_dns: LocalDns
) -> None:
    org = await world.org()
    owner, _ = await world.member(org, "ORGANIZATION_OWNER")
    async with world.database.transaction() as db:
        made = await domains.claim_domain(db, system_principal(), org.id, "example.com")
    dns_zone.txt(domains.record_name(made), domains.record_value(made))
    async with world.database.transaction() as db:
        actor = Principal(
            grants=await load_user_grants(db, owner.id),
            user=owner,
            policy=SecurityPolicy(require_elevation=True),
        )
        with pytest.raises(ElevationRequired):
            await domains.claim_domain(db, actor, org.id, "example.org")
        with pytest.raises(ElevationRequired):
            await domains.verify_domain(db, actor, org.id, "example.com", _never)
    assert await claims(world) == [(org.id, "example.com", False)]


async def _never(name: str) -> list[str]:
    raise AssertionError(f"looked up {name} before the elevation check")


def test_the_cli_adds_lists_verifies_and_removes(
    database: Database, local_dns: LocalDns, dns_zone: Zone, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENANTRY_DATABASE_URL", database.settings.database_url)
    monkeypatch.setenv("TENANTRY_DNS_NAMESERVERS", f"127.0.0.1:{local_dns.port}")
    org = asyncio.run(_in_new_database(database, _new_org))
    cli = CliRunner()
    added = cli.invoke(cli_app, ["domain", "add", "--organization", org, "Example.com"])
    assert added.exit_code == 0, added.output
    assert "example.com  pending" in added.stdout
    txt = next(line for line in added.stdout.splitlines() if line.startswith("TXT "))
    _, name, value = txt.split()
    assert name == "_tenantry-challenge.example.com" and value.startswith(PREFIX)
    refused = cli.invoke(cli_app, ["domain", "verify", "--organization", org, "example.com"])
    assert refused.exit_code == 1 and "no TXT record" in refused.output
    dns_zone.txt(name, value)
    verified = cli.invoke(cli_app, ["domain", "verify", "--organization", org, "example.com"])
    assert verified.exit_code == 0 and "example.com  verified since" in verified.stdout
    listed = cli.invoke(cli_app, ["domain", "list", "--organization", org])
    assert "example.com  verified" in listed.stdout and value in listed.stdout
    bad = cli.invoke(cli_app, ["domain", "add", "--organization", org, "com"])
    assert bad.exit_code == 1 and "domain" in bad.output
    removed = cli.invoke(cli_app, ["domain", "remove", "--organization", org, "example.com"])
    assert removed.exit_code == 0 and "removed example.com" in removed.stdout
    assert cli.invoke(cli_app, ["domain", "list", "--organization", org]).stdout.strip() == ""


T = TypeVar("T")


async def _in_new_database(database: Database, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    other = Database(database.settings)
    try:
        async with other.transaction() as db:
            return await work(db)
    finally:
        await other.dispose()


async def _new_org(db: AsyncSession) -> str:
    org = await organizations.create_organization(
        db, system_principal(), OrganizationFields(name="Cli")
    )
    return org.id
